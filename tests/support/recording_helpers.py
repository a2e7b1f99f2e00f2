"""What the recording-store tests share: a real SQLite catalog and a session's meta."""

from __future__ import annotations

import os
from pathlib import Path

from bastion.recordings import RecordingHeader
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store.db import AsyncDatabase
from bastion.store.recording_catalog import SqliteRecordingCatalog


def catalog_in(root: Path) -> tuple[SqliteRecordingCatalog, AsyncDatabase]:
    state = StateDir(root)
    if not state.is_initialised():
        initialise(state)
    db = AsyncDatabase(state.database)
    return SqliteRecordingCatalog(db), db


def meta(session_id: str) -> RecordingHeader:
    return RecordingHeader(session_id, f"test -> {session_id}", 80, 24, 1_700_000_000, "echo hi")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
