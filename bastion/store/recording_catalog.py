"""The recordings catalog on SQLite: `RecordingRepo` (blocking) and
`SqliteRecordingCatalog`, the async `RecordingCatalog` the recording store uses
(bastion/recordings/catalog.py says what each method means)."""

from __future__ import annotations

import sqlite3
from dataclasses import fields

from bastion.recordings.catalog import RecordingRow
from bastion.store.db import AsyncDatabase, Database

_COLUMNS = tuple(f.name for f in fields(RecordingRow))


class RecordingRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def opened(self, row: RecordingRow) -> None:
        values = {name: getattr(row, name) for name in _COLUMNS}
        self.db.conn.execute(
            f"INSERT INTO recordings ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
            tuple(values.values()),
        )

    def chunk_stored(self, session_id: str, seq: int, start: int, length: int, at: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO recording_chunks (session_id, seq, start, length, stored)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, seq, start, length, at),
            )
            conn.execute(
                "UPDATE recordings SET uploaded = MAX(uploaded, ?), chunks = MAX(chunks, ?)"
                " WHERE session_id = ?",
                (start + length, seq + 1, session_id),
            )

    def closed(self, session_id: str, length: int, at: float, error: str | None) -> None:
        self.db.conn.execute(
            "UPDATE recordings SET state = 'closed', closed = ?, length = ?, error = ?"
            " WHERE session_id = ? AND state = 'open'",
            (at, length, error, session_id),
        )

    def completed(self, session_id: str, size: int, sha256: str | None, at: float) -> None:
        self.db.conn.execute(
            "UPDATE recordings SET state = 'complete', size = ?, sha256 = ?, completed = ?,"
            " closed = COALESCE(closed, ?), claimed_by = NULL, claimed_until = NULL"
            " WHERE session_id = ?",
            (size, sha256, at, at, session_id),
        )

    def node_seen(self, node: str, at: float) -> None:
        self.db.conn.execute(
            "INSERT INTO recording_node_heartbeats (node, seen) VALUES (?, ?)"
            " ON CONFLICT (node) DO UPDATE SET seen = MAX(seen, excluded.seen)",
            (node, at),
        )

    def completion_candidates(
        self, store: str, stale_before: float, now: float, limit: int = 100
    ) -> list[RecordingRow]:
        rows = self.db.conn.execute(
            "SELECT r.* FROM recordings r"
            " LEFT JOIN recording_node_heartbeats n ON n.node = r.node"
            " WHERE r.store = ? AND r.state != 'complete'"
            " AND (r.claimed_until IS NULL OR r.claimed_until < ?)"
            " AND (n.seen IS NULL OR n.seen < ? OR (r.state = 'closed' AND r.closed < ?))"
            " ORDER BY r.started LIMIT ?",
            (store, now, stale_before, stale_before, limit),
        ).fetchall()
        return [_row(row) for row in rows]

    def claim(self, session_id: str, node: str, now: float, until: float) -> bool:
        cur = self.db.conn.execute(
            "UPDATE recordings SET claimed_by = ?, claimed_until = ?"
            " WHERE session_id = ? AND state != 'complete'"
            " AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)",
            (node, until, session_id, now, node),
        )
        return cur.rowcount == 1

    def locate(self, session_id: str) -> RecordingRow | None:
        row = self.db.conn.execute(
            "SELECT * FROM recordings WHERE session_id = ?", (session_id,)
        ).fetchone()
        return _row(row) if row else None


def _row(row: sqlite3.Row) -> RecordingRow:
    return RecordingRow(**{name: row[name] for name in _COLUMNS})


class SqliteRecordingCatalog:
    """`RecordingCatalog` over the state database's single worker thread."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def recording_opened(self, row: RecordingRow) -> None:
        await self.db.run(lambda db: RecordingRepo(db).opened(row))

    async def chunk_stored(
        self, session_id: str, seq: int, start: int, length: int, at: float
    ) -> None:
        await self.db.run(
            lambda db: RecordingRepo(db).chunk_stored(session_id, seq, start, length, at)
        )

    async def recording_closed(
        self, session_id: str, length: int, at: float, error: str | None
    ) -> None:
        await self.db.run(lambda db: RecordingRepo(db).closed(session_id, length, at, error))

    async def recording_completed(
        self, session_id: str, size: int, sha256: str | None, at: float
    ) -> None:
        await self.db.run(lambda db: RecordingRepo(db).completed(session_id, size, sha256, at))

    async def node_seen(self, node: str, at: float) -> None:
        await self.db.run(lambda db: RecordingRepo(db).node_seen(node, at))

    async def completion_candidates(
        self, store: str, stale_before: float, now: float, limit: int = 100
    ) -> list[RecordingRow]:
        return await self.db.run(
            lambda db: RecordingRepo(db).completion_candidates(store, stale_before, now, limit)
        )

    async def claim(self, session_id: str, node: str, now: float, until: float) -> bool:
        return await self.db.run(lambda db: RecordingRepo(db).claim(session_id, node, now, until))

    async def locate(self, session_id: str) -> RecordingRow | None:
        return await self.db.run(lambda db: RecordingRepo(db).locate(session_id))
