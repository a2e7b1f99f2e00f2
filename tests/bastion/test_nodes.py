"""Node names: a restarted node takes its name back; a live one keeps it."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from bastion.nodes import Node, NodeNameInUse, may_take_over, start_node
from bastion.store import open_store
from bastion.store.records import NodeRecord, SessionRecord


def node(pid: int = 100, host: str = "h1") -> Node:
    return Node("b1", host, pid, time.time())


def row(pid: int, host: str, beat: float) -> NodeRecord:
    return NodeRecord("b1", host, pid, beat - 100, beat)


def test_who_may_take_a_node_name() -> None:
    now = time.time()
    me = node(pid=os.getpid())
    assert may_take_over(me, None, now)
    assert may_take_over(me, row(os.getpid(), "h1", now), now)  # our own row
    assert may_take_over(me, row(2**22 + 12345, "h1", now), now)  # same host, pid gone: a crash
    assert not may_take_over(me, row(1, "h1", now), now)  # same host, pid 1 alive
    assert not may_take_over(me, row(7, "h2", now - 5), now)  # another host, beating
    assert may_take_over(me, row(7, "h2", now - 60), now)  # another host, silent: dead


def test_a_start_refuses_a_live_name_and_ends_what_a_crash_left(tmp_path) -> None:
    async def main() -> None:
        async with open_store(f"sqlite://{tmp_path / 'b.db'}", node="b1", create=True) as store:
            await store.heartbeat(row(1, "h1", time.time()))
            with pytest.raises(NodeNameInUse, match="in use by pid 1"):
                await start_node(store, node(pid=os.getpid()))
            await store.heartbeat(row(2**22 + 12345, "h1", time.time()))
            await store.start_session(
                SessionRecord("s1", "a", None, "l", "t", "exec", "x", None, 1.0, node="b1")
            )
            assert await start_node(store, node(pid=os.getpid())) == ["s1"]

    asyncio.run(main())
