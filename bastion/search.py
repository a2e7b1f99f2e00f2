"""`bastion search`: full-text search over what sessions put on screen (SQLite FTS5).

A session is indexed after it ends, off the data path: its recording is
played through the terminal model (recorder/screen_text.py) in a child
process, and the lines go into `screen_text` in chunks, each with the time
into the session of its first line. A bastion that crashed leaves sessions
unindexed; `serve` picks them up at start, and `bastion search --reindex`
does it on demand.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bastion.errors import UsageError
from bastion.recordings import RecordingRow, RecordingUnavailable, open_recording
from bastion.recordings.config import RecordingsConfig
from bastion.store.db import AsyncDatabase, Database
from bastion.store.recording_catalog import RecordingRepo
from recorder.cast import CastFormatError, CastReader
from recorder.screen_text import ScreenText

log = logging.getLogger("bastion.search")

CHUNK_LINES = 20
MAX_QUERY = 500
MAX_QUEUE = 10000


@dataclass(frozen=True)
class ScreenLines:
    lines: list[tuple[float, str]]
    skipped_chars: int


def extract(stream: BinaryIO, kind: str, name: str = "recording") -> ScreenLines:
    """Blocking: play a recording and return the lines it showed."""
    with CastReader(stream, name) as reader:
        text = ScreenText(reader.header.width, reader.header.height, newline_mode=kind != "shell")
        lines: list[tuple[float, str]] = []
        for event in reader:
            if event.kind == "o":
                text.feed(event.time, event.data)
                lines.extend(text.lines())
            elif event.kind == "r":
                cols, _, rows = event.data.partition("x")
                if cols.isdigit() and rows.isdigit():
                    text.resize(int(cols), int(rows))
        lines.extend(text.finish())
    return ScreenLines(lines, text.skipped_chars)


def store(db: Database, session_id: str, found: ScreenLines | None, error: str | None) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM screen_text WHERE session_id = ?", (session_id,))
        lines = found.lines if found else []
        for start in range(0, len(lines), CHUNK_LINES):
            chunk = lines[start : start + CHUNK_LINES]
            conn.execute(
                "INSERT INTO screen_text (text, session_id, at) VALUES (?, ?, ?)",
                ("\n".join(line for _, line in chunk), session_id, round(chunk[0][0], 3)),
            )
        conn.execute(
            "INSERT OR REPLACE INTO screen_indexed (session_id, indexed, lines, skipped_chars,"
            " error) VALUES (?, ?, ?, ?, ?)",
            (session_id, time.time(), len(lines), found.skipped_chars if found else 0, error),
        )


def unindexed(db: Database, limit: int = 1000) -> list[tuple[str, str]]:
    """(session id, kind) of ended, recorded sessions not indexed yet, oldest first."""
    rows = db.conn.execute(
        "SELECT s.id, s.kind FROM sessions s JOIN recordings r ON r.session_id = s.id"
        " LEFT JOIN screen_indexed i ON i.session_id = s.id"
        " WHERE i.session_id IS NULL AND s.ended IS NOT NULL"
        " AND s.kind != 'subsystem' ORDER BY s.started LIMIT ?",
        (limit,),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def _recording_and_kind(db: Database, session_id: str) -> tuple[RecordingRow | None, str | None]:
    row = db.conn.execute("SELECT kind FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return RecordingRepo(db).locate(session_id), row[0] if row else None


def index_one(
    db: Database, session_id: str, kind: str, config: RecordingsConfig, root: Path
) -> None:
    """Blocking: extract and store in the calling thread (the CLI's --reindex)."""
    recording, _ = _recording_and_kind(db, session_id)
    if recording is None:
        return
    found, error = _extract_safely(recording, kind, config, root)
    store(db, session_id, found, error)


def _extract_safely(
    recording: RecordingRow, kind: str, config: RecordingsConfig, root: Path
) -> tuple[ScreenLines | None, str | None]:
    """Read the recording from its store and extract; an unreadable one is an indexing error."""
    name = f"recording of session {recording.session_id}"
    try:
        return extract(open_recording(recording, config, root), kind, name), None
    except (OSError, CastFormatError, RecordingUnavailable) as exc:
        log.warning("session %s: cannot index: %s", recording.session_id, exc)
        return None, str(exc)[:500]


class Indexer:
    """Indexes ended sessions one at a time in the background."""

    def __init__(self, db: AsyncDatabase, config: RecordingsConfig, root: Path) -> None:
        self.db = db
        self.config = config
        self.root = root
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
        for session_id, _ in await self.db.run(unindexed):
            self.session_ended(session_id)
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
        recording, kind = await self.db.run(lambda db: _recording_and_kind(db, session_id))
        if recording is None or kind is None or kind == "subsystem":
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        found, error = await loop.run_in_executor(
            self._pool, _extract_safely, recording, kind, self.config, self.root
        )
        await self.db.run(lambda db: store(db, session_id, found, error))


def search(
    db: Database,
    query: str,
    *,
    raw: bool = False,
    identity: str | None = None,
    target: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Matches, newest session first; `query` is a phrase unless `raw` (FTS5 syntax)."""
    if not query.strip() or len(query) > MAX_QUERY:
        raise UsageError(f"give a search text of 1-{MAX_QUERY} characters")
    match = query if raw else '"' + query.replace('"', '""') + '"'
    where, params = ["screen_text MATCH ?"], [match]
    if identity:
        where.append("s.identity = ?")
        params.append(identity)
    if target:
        where.append("s.target = ?")
        params.append(target)
    sql = (
        "SELECT t.session_id, t.at, snippet(screen_text, 0, '[', ']', '...', 16) AS snippet,"
        " s.identity, s.target, s.login, s.kind, s.command, s.started"
        " FROM screen_text t JOIN sessions s ON s.id = t.session_id"
        f" WHERE {' AND '.join(where)} ORDER BY s.started DESC, t.at LIMIT ?"
    )
    try:
        rows = db.conn.execute(sql, (*params, limit)).fetchall()
    except sqlite3.OperationalError as exc:  # an FTS5 syntax error in a raw query
        raise UsageError(f"bad search query: {exc}") from None
    return [dict(row) for row in rows]
