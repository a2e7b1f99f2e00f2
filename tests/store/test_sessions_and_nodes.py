"""Sessions with their node, heartbeats, restarts, recordings' metadata, search, alerts."""

from __future__ import annotations

import asyncio
import time

import pytest
from storetest import two_nodes

from bastion.errors import UsageError
from bastion.store.records import NodeRecord, SessionEnd, SessionRecord


def session(session_id: str, *, node: str | None = None, started: float = 100.0) -> SessionRecord:
    return SessionRecord(
        session_id, "alice", 7, "deploy", "web1", "exec", "ls", "192.0.2.7:40000", started,
        recording=f"/rec/{session_id}.cast", node=node,
    )  # fmt: skip


async def test_sessions_name_the_node_that_served_them(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.start_session(session("s1"))
        await b.start_session(session("s2", started=101.0))
        listed = await a.list_sessions()
        assert [(s.id, s.node, s.peer) for s in listed] == [
            ("s1", "node-a", "192.0.2.7:40000"),
            ("s2", "node-b", "192.0.2.7:40000"),
        ]


async def test_a_restarted_node_ends_only_its_own_open_sessions(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.start_session(session("a1"))
        await a.start_session(session("a2"))
        await a.finish_session("a2", SessionEnd(ended=105.0, exit_status=0))
        await b.start_session(session("b1"))
        closed = await a.close_interrupted_sessions(["node-a"])
        assert closed == ["a1"]
        ended = await b.get_session("a1")
        assert ended.ended is not None and ended.error == "ended: bastion restart"
        assert (await b.get_session("a2")).error is None
        assert (await b.get_session("b1")).ended is None
        assert await b.close_interrupted_sessions(["node-a"]) == []
        assert (await a.verify_chain()).intact


async def test_heartbeats_show_which_nodes_went_silent(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        now = time.time()
        await a.heartbeat(NodeRecord("node-a", "host1", 11, now - 100, now, "10.0.0.1:2222"))
        await b.heartbeat(NodeRecord("node-b", "host2", 22, now - 100, now - 60))
        assert [n.name for n in await a.stale_nodes(now - 20)] == ["node-b"]
        await b.heartbeat(NodeRecord("node-b", "host2", 23, now, now))
        assert await a.stale_nodes(now - 20) == []
        assert (await a.get_node("node-b")).pid == 23
        assert [n.name for n in await b.list_nodes()] == ["node-a", "node-b"]


async def test_recordings_are_completed_once_by_whichever_node_claims_them(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        now = time.time()
        await a.heartbeat(NodeRecord("node-a", "h", 1, now, now))
        for sid in ("r1", "r2", "r3"):
            await a.start_session(session(sid))
            await a.set_recording(sid, f"s3://bucket/{sid}.cast")
        assert await a.add_recording_chunk("r1", 0, "r1/0", 100, "aa") is True
        assert await b.add_recording_chunk("r1", 0, "r1/0", 100, "aa") is False
        await b.add_recording_chunk("r1", 1, "r1/1", 50)
        assert [c.key for c in await b.recording_chunks("r1")] == ["r1/0", "r1/1"]
        await a.finish_session("r1", SessionEnd(ended=now, exit_status=0))
        # r1 ended; r2, r3 still run on a live node
        assert [r.session_id for r in await b.recordings_to_complete(now - 20)] == ["r1"]
        claims = await asyncio.gather(a.claim_recording("r1", 30), b.claim_recording("r1", 30))
        assert sorted(claims) == [False, True]
        assert await b.recordings_to_complete(now - 20) == []  # claimed
        assert await b.complete_recording("r1", "s3://bucket/r1.cast", "ab" * 32, 150) is True
        assert await a.complete_recording("r1", "s3://bucket/r1.cast", "cd" * 32, 150) is False
        done = await a.get_recording("r1")
        assert (done.sha256, done.size, done.chunks) == ("ab" * 32, 150, 2)
        assert (await a.get_session("r1")).recording == "s3://bucket/r1.cast"
        # node-a goes silent: its running sessions' recordings are abandoned, to be completed
        later = now + 60
        assert [r.session_id for r in await b.recordings_to_complete(later - 20)] == ["r2", "r3"]
        assert (await a.verify_chain()).intact


async def test_screen_text_is_searched_on_both_backends(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.start_session(session("s1"))
        await a.finish_session("s1", SessionEnd(ended=101.0))
        await b.start_session(session("s2", started=200.0))
        await b.finish_session("s2", SessionEnd(ended=201.0))
        assert [u.session_id for u in await a.unindexed_sessions()] == ["s1", "s2"]
        lines = [(0.5, "total 4"), (1.25, "deploying release candidate seven"), (2.0, "done")]
        await a.index_screen("s1", lines)
        await b.index_screen("s2", [(3.0, "release candidate seven again")], skipped_chars=10)
        assert await a.unindexed_sessions() == []
        hits = await b.search_screen("candidate seven")
        assert [(h.session_id, h.at) for h in hits] == [("s2", 3.0), ("s1", 0.5)]
        assert "[" in hits[1].snippet and "]" in hits[1].snippet
        assert await b.search_screen("seven candidate") == []  # a phrase, in order
        assert [h.session_id for h in await a.search_screen("release", identity="nobody")] == []
        assert len(await a.search_screen("release OR nothinghere", raw=True)) == 2
        await a.index_screen("s1", [(0.1, "replaced")])  # indexing again replaces
        assert [h.session_id for h in await a.search_screen("candidate seven")] == ["s2"]
        with pytest.raises(UsageError):
            await a.search_screen("   ")


async def test_alert_counters_see_an_identitys_commands_on_every_node(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        now = time.time()
        counts = []
        for n in range(6):
            store = a if n % 2 else b
            counts.append(
                await store.count_command("alice", now + n * 0.1, outcome="deny", window=10)
            )
        assert [c.denied_streak for c in counts] == [1, 2, 3, 4, 5, 6]
        assert [c.in_window for c in counts] == [1, 2, 3, 4, 5, 6]
        allowed = await a.count_command("alice", now + 1, outcome="allow", window=10)
        assert allowed.denied_streak == 0 and allowed.in_window == 7
        other = await b.count_command("bob", now + 1, outcome="deny", window=10)
        assert (other.denied_streak, other.in_window) == (1, 1)
        late = await b.count_command("alice", now + 30, outcome="review", window=10)
        assert (late.denied_streak, late.in_window) == (0, 1)  # the window moved on
        racing = await asyncio.gather(
            *(s.count_command("carol", now, outcome="deny", window=10) for s in (a, b) * 5)
        )
        assert sorted(c.denied_streak for c in racing) == list(range(1, 11))


async def test_the_configuration_is_journaled_when_it_changes(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        assert await a.record_config("11" * 32, "bastion.toml; roles: none") is True
        assert await b.record_config("11" * 32, "bastion.toml; roles: none") is False
        assert await b.record_config("22" * 32, "bastion.toml; roles: ops") is True
        result = await a.verify_chain()
        assert result.intact and result.entries == 2
        async with a.transaction() as tx:
            await tx.execute("UPDATE config_changes SET detail = 'roles: none' WHERE id = 2")
        assert (await a.verify_chain()).problems == ["config change 2: detail edited"]
