"""A bastion node among several on one store: its name, its heartbeat, and its restart.

Every `bastion serve` process is a node (`[server] node`, else the host
name; `--workers N` names its workers NAME-w1..NAME-wN). A node writes its
heartbeat every HEARTBEAT seconds. At start it ends the sessions it still
has open (cut by a crash or `kill -9`) as `ended: bastion restart`; while it
runs it does the same for nodes whose heartbeat is older than NODE_STALE
seconds (machines that died), so no session stays open for ever.

Two live processes must not share a name (one would end the other's
sessions): a start is refused while another process holds the name with a
fresh heartbeat, unless that process is on this host and no longer exists.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass

from bastion.errors import BastionError
from bastion.store import Store
from bastion.store.records import NodeRecord

log = logging.getLogger("bastion.nodes")

HEARTBEAT = 2.0
NODE_STALE = 20.0
EVENT_RETENTION = 24 * 3600.0  # outbox events older than this are pruned (all were consumed)
PRUNE_EVERY = 900  # beats


class NodeNameInUse(BastionError):
    """Another live bastion process uses this node name."""


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    pid: int
    started: float
    address: str | None = None

    def record(self, now: float) -> NodeRecord:
        return NodeRecord(self.name, self.host, self.pid, self.started, now, self.address)


def default_node_name() -> str:
    return socket.gethostname().split(".")[0] or "bastion"


def this_node(name: str | None, address: str | None = None) -> Node:
    return Node(
        name or default_node_name(), socket.gethostname(), os.getpid(), time.time(), address
    )


def may_take_over(node: Node, previous: NodeRecord | None, now: float) -> bool:
    """May `node` use its name, given the row another process left under it?"""
    if previous is None or previous.pid == node.pid and previous.host == node.host:
        return True
    if now - previous.heartbeat >= NODE_STALE:
        return True  # silent long enough: dead, wherever it ran
    return previous.host == node.host and not _alive(previous.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def start_node(store: Store, node: Node) -> list[str]:
    """Claim the node's name, end the sessions its last run left open; returns their ids."""
    previous = await store.get_node(node.name)
    now = time.time()
    if not may_take_over(node, previous, now):
        assert previous is not None
        raise NodeNameInUse(
            f"node name {node.name!r} is in use by pid {previous.pid} on {previous.host}"
            f" (heartbeat {now - previous.heartbeat:.0f}s ago): set [server] node"
            " or `bastion serve --node NAME`"
        )
    await store.heartbeat(node.record(now))
    closed = await store.close_interrupted_sessions([node.name], unassigned=True)
    if closed:
        log.warning(
            "ended %d session(s) a previous run left open: %s", len(closed), ", ".join(closed)
        )
    return closed


async def heartbeat_forever(store: Store, node: Node, interval: float = HEARTBEAT) -> None:
    """Beat, end the open sessions of nodes that stopped beating, prune old events."""
    beats = 0
    while True:
        try:
            now = time.time()
            await store.heartbeat(node.record(now))
            beats += 1
            if beats % PRUNE_EVERY == 1:
                await store.prune_events(now - EVENT_RETENTION)
            stale = [
                n.name for n in await store.stale_nodes(now - NODE_STALE) if n.name != node.name
            ]
            closed = await store.close_interrupted_sessions(stale) if stale else []
            if closed:
                log.warning(
                    "ended %d session(s) of silent node(s) %s", len(closed), ", ".join(stale)
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # keep beating; a failed beat is logged, not fatal
            log.exception("node heartbeat failed")
        await asyncio.sleep(interval)
