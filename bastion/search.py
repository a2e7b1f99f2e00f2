"""`bastion search`: full-text search over what sessions put on screen.

The store indexes and searches the text (FTS5 on SQLite, tsvector on
PostgreSQL); this module only extracts it.

A session is indexed after it ends, off the data path: its recording is
played through the terminal model (recorder/screen_text.py) in a child
process, and the lines go into `screen_text` in chunks, each with the time
into the session of its first line. That work is bounded twice: only the
first DEFAULT_MAX_CHARS of output are played (the file is not even read
past them), and the child, at the lowest CPU priority (unless its share is
a whole core), sleeps as needed to use at most `cpu_share` of one core, so indexing never competes with live
sessions for more than that. A bastion that crashed leaves sessions
unindexed; `serve` picks them up at start, and `bastion search --reindex`
does it on demand.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bastion.recordings import RecordingUnavailable, open_recording
from bastion.recordings.config import RecordingsConfig
from bastion.store import Store
from bastion.store.records import UnindexedSession
from recorder.cast import CastFormatError, CastReader
from recorder.screen_text import DEFAULT_MAX_CHARS, ScreenText

log = logging.getLogger("bastion.search")

MAX_QUEUE = 10000


DEFAULT_CPU_SHARE = 0.25  # of one core, for indexing ended sessions


@dataclass(frozen=True)
class ScreenLines:
    lines: list[tuple[float, str]]
    skipped_chars: int


class CpuShare:
    """Sleeps often enough that the process uses at most `share` of one core."""

    def __init__(self, share: float) -> None:
        self.share = min(1.0, max(0.01, share))
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def pace(self) -> None:
        used = time.process_time() - self._cpu
        allowed = (time.monotonic() - self._wall) * self.share
        if used > allowed:
            time.sleep((used - allowed) / self.share)


def extract(
    stream: Path | BinaryIO,
    kind: str,
    cpu_share: float = 1.0,
    max_chars: int = DEFAULT_MAX_CHARS,
    name: str = "recording",
) -> ScreenLines:
    """Blocking: play a recording (any binary stream) and return the lines it showed."""
    pace = CpuShare(cpu_share)
    with CastReader(stream, name) as reader:
        text = ScreenText(
            reader.header.width,
            reader.header.height,
            newline_mode=kind != "shell",
            max_chars=max_chars,
        )
        lines: list[tuple[float, str]] = []
        for event in reader:
            if event.kind == "o":
                text.feed(event.time, event.data)
                lines.extend(text.lines())
                if text.full:
                    text.skipped_chars += reader.skip_rest()  # counted, never parsed
                    break
            elif event.kind == "r":
                cols, _, rows = event.data.partition("x")
                if cols.isdigit() and rows.isdigit():
                    text.resize(int(cols), int(rows))
            pace.pace()
        lines.extend(text.finish())
    return ScreenLines(lines, text.skipped_chars)


async def index_one(
    store: Store, item: UnindexedSession, config: RecordingsConfig, root: Path
) -> None:
    """Extract in the calling thread and store (the CLI's --reindex)."""
    found, error = _extract_safely(item.session_id, item.recording, item.kind, config, root)
    await _store(store, item.session_id, found, error)


async def _store(
    store: Store, session_id: str, found: ScreenLines | None, error: str | None
) -> None:
    lines = found.lines if found else []
    await store.index_screen(session_id, lines, found.skipped_chars if found else 0, error)


def _extract_safely(
    session_id: str,
    recording: str,
    kind: str,
    config: RecordingsConfig,
    root: Path,
    cpu_share: float = 1.0,
) -> tuple[ScreenLines | None, str | None]:
    """Read the recording from whichever store holds it; unreadable is an indexing error."""
    try:
        stream = open_recording(recording, config, root)
        return extract(stream, kind, cpu_share, name=f"recording of session {session_id}"), None
    except (OSError, CastFormatError, RecordingUnavailable) as exc:
        log.warning("session %s: cannot index %s: %s", session_id, recording, exc)
        return None, str(exc)[:500]


def _lowest_priority() -> None:
    try:
        os.nice(19)
    except OSError:
        pass


class Indexer:
    """Indexes ended sessions one at a time in the background."""

    def __init__(
        self,
        store: Store,
        config: RecordingsConfig,
        root: Path,
        cpu_share: float = DEFAULT_CPU_SHARE,
    ) -> None:
        self.store = store
        self.config = config
        self.root = root
        self.cpu_share = cpu_share
        self._queue: asyncio.Queue[str] = asyncio.Queue(MAX_QUEUE)
        # pyte is pure Python: in a thread it would take the GIL from the data path,
        # so recordings are played in one child process (spawned, not forked: the
        # bastion has threads).
        self._pool: ProcessPoolExecutor | None = None

    def session_ended(self, session_id: str) -> None:
        try:
            self._queue.put_nowait(session_id)
        except asyncio.QueueFull:
            log.error("search index queue full; session %s left for --reindex", session_id)

    async def run_forever(self) -> None:
        for item in await self.store.unindexed_sessions():
            self.session_ended(item.session_id)
        try:
            while True:
                session_id = await self._queue.get()
                try:
                    await self._index(session_id)
                except Exception:  # keep indexing the others
                    log.exception("indexing session %s failed", session_id)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    async def _index(self, session_id: str) -> None:
        session = await self.store.get_session(session_id)
        if session.recording is None or session.kind == "subsystem":
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_lowest_priority if self.cpu_share < 1 else None,
            )
        loop = asyncio.get_running_loop()
        found, error = await loop.run_in_executor(
            self._pool,
            _extract_safely,
            session_id,
            session.recording,
            session.kind,
            self.config,
            self.root,
            self.cpu_share,
        )
        await _store(self.store, session_id, found, error)
