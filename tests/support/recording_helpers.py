"""What the recording-store tests share: a real SQLite store and a session's header."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bastion.recordings import RecordingHeader
from bastion.store import Store, open_store
from bastion.store.records import NodeRecord, SessionEnd, SessionRecord


async def store_in(root: Path, node: str = "node-a") -> Store:
    """An opened SQLite store in `root` (created by the first caller)."""
    root.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite://{root / 'bastion.db'}", node=node, create=True)
    await store.open()
    return store


async def session_row(store: Store, session_id: str, *, node: str | None = None) -> None:
    await store.start_session(
        SessionRecord(
            session_id, "test", 1, "deploy", "web1", "exec", "echo hi", None, time.time(), node=node
        )
    )


async def end_session(store: Store, session_id: str, ended: float | None = None) -> None:
    await store.finish_session(session_id, SessionEnd(ended=ended or time.time()))


async def heartbeat(store: Store, node: str, at: float) -> None:
    await store.heartbeat(NodeRecord(node, "host", 1, at, at))


def meta(session_id: str) -> RecordingHeader:
    return RecordingHeader(session_id, f"test -> {session_id}", 80, 24, 1_700_000_000, "echo hi")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
