"""Sessions and the node that served them, node heartbeats, recordings, screen text."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict

from bastion.errors import NotFound, UsageError
from bastion.store.records import (
    NodeRecord,
    RecordingChunk,
    RecordingRecord,
    ScreenIndexState,
    SearchHit,
    SessionEnd,
    SessionRecord,
    UnindexedSession,
)
from bastion.store.sql.core import SqlCore
from bastion.store.sql.tx import Row, Tx

CHUNK_LINES = 20
MAX_QUERY = 500
RESTART_REASON = "ended: bastion restart"


class SessionOps(SqlCore):
    # --- hooks: full-text search differs per backend ------------------------------

    async def _insert_screen_chunk(self, tx: Tx, session_id: str, at: float, text: str) -> None:
        raise NotImplementedError

    async def _search_rows(
        self, match: str, raw: bool, identity: str | None, target: str | None, limit: int
    ) -> list[Row]:
        raise NotImplementedError

    # --- sessions -------------------------------------------------------------------

    async def start_session(self, record: SessionRecord) -> None:
        values = asdict(record)
        values["node"] = values["node"] or self.node
        session_id = values.pop("id")
        columns = ", ".join(["id", *values])
        marks = ", ".join("?" for _ in range(len(values) + 1))
        async with self.transaction() as tx:
            await tx.execute(
                f"INSERT INTO sessions ({columns}) VALUES ({marks})", (session_id, *values.values())
            )
            await self._chain(tx, "sessions", session_id, "insert", values)

    async def finish_session(self, session_id: str, end: SessionEnd) -> None:
        values = asdict(end)
        assignments = ", ".join(f"{name} = ?" for name in values)
        async with self.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE sessions SET {assignments} WHERE id = ?", (*values.values(), session_id)
            )
            if changed:
                await self._chain(tx, "sessions", session_id, "update", values)
                await self._publish(tx, "session.ended", session_id)

    async def get_session(self, session_id: str) -> SessionRecord:
        row = await self._one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return _session(row)

    async def list_sessions(self, limit: int = 1000) -> list[SessionRecord]:
        """The newest `limit` sessions, oldest first."""
        rows = await self._all("SELECT * FROM sessions ORDER BY started DESC LIMIT ?", (limit,))
        return [_session(row) for row in reversed(rows)]

    async def close_interrupted_sessions(
        self, nodes: Sequence[str], *, unassigned: bool = False, reason: str = RESTART_REASON
    ) -> list[str]:
        """End the sessions still open on `nodes` (which were restarted or went silent).

        `unassigned` also ends open sessions with no node (recorded before
        sessions named their node: a single-node bastion's).
        """
        if not nodes and not unassigned:
            return []
        now = time.time()
        where = []
        if nodes:
            where.append(f"node IN ({', '.join('?' for _ in nodes)})")
        if unassigned:
            where.append("node IS NULL")
        async with self.transaction() as tx:
            rows = await tx.all(
                f"UPDATE sessions SET ended = ?, error = ? WHERE ended IS NULL"
                f" AND ({' OR '.join(where)}) RETURNING id",
                (now, reason, *nodes),
            )
            ids = sorted(row["id"] for row in rows)
            for session_id in ids:
                await self._chain(
                    tx, "sessions", session_id, "update", {"ended": now, "error": reason}
                )
            if ids:
                await self._publish(tx, "sessions.interrupted", None, {"sessions": ids})
        return ids

    # --- nodes ----------------------------------------------------------------------

    async def heartbeat(self, node: NodeRecord) -> None:
        """Say that `node` is alive (insert or refresh its row)."""
        async with self.transaction() as tx:
            await tx.execute(
                "INSERT INTO nodes (name, host, pid, started, heartbeat, address)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
                " pid = excluded.pid, started = excluded.started, heartbeat = excluded.heartbeat,"
                " address = excluded.address",
                (node.name, node.host, node.pid, node.started, node.heartbeat, node.address),
            )

    async def get_node(self, name: str) -> NodeRecord | None:
        row = await self._one("SELECT * FROM nodes WHERE name = ?", (name,))
        return NodeRecord(**row) if row else None

    async def list_nodes(self) -> list[NodeRecord]:
        return [NodeRecord(**row) for row in await self._all("SELECT * FROM nodes ORDER BY name")]

    async def stale_nodes(self, heartbeat_before: float) -> list[NodeRecord]:
        rows = await self._all(
            "SELECT * FROM nodes WHERE heartbeat < ? ORDER BY name", (heartbeat_before,)
        )
        return [NodeRecord(**row) for row in rows]

    # --- recordings (metadata for the recording store) -----------------------------

    async def set_recording(self, session_id: str, location: str) -> None:
        """Where the session's recording is written (a path or an object URL)."""
        async with self.transaction() as tx:
            await tx.execute(
                "INSERT INTO recordings (session_id, location, node) VALUES (?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET location = excluded.location",
                (session_id, location, self.node),
            )
            await self._chain(
                tx, "recordings", session_id, "insert", {"location": location, "node": self.node}
            )

    async def add_recording_chunk(
        self, session_id: str, seq: int, key: str, size: int, sha256: str | None = None
    ) -> bool:
        """Note an uploaded chunk; False if chunk `seq` of the session was noted already."""
        async with self.transaction() as tx:
            row = await tx.one(
                "INSERT INTO recording_chunks (session_id, seq, key, size, sha256, uploaded)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, seq) DO NOTHING"
                " RETURNING seq",
                (session_id, seq, key, size, sha256, time.time()),
            )
        return row is not None

    async def recording_chunks(self, session_id: str) -> list[RecordingChunk]:
        rows = await self._all(
            "SELECT * FROM recording_chunks WHERE session_id = ? ORDER BY seq", (session_id,)
        )
        return [RecordingChunk(**row) for row in rows]

    async def get_recording(self, session_id: str) -> RecordingRecord | None:
        row = await self._one(_RECORDING_SELECT + " WHERE r.session_id = ?", (session_id,))
        return _recording(row) if row else None

    async def claim_recording(self, session_id: str, seconds: float) -> bool:
        """Take the right to complete a recording for `seconds` (one completer at a time)."""
        now = time.time()
        async with self.transaction() as tx:
            changed = await tx.execute(
                "UPDATE recordings SET claimed_by = ?, claim_until = ? WHERE session_id = ?"
                " AND completed IS NULL AND (claim_until IS NULL OR claim_until < ?"
                " OR claimed_by = ?)",
                (self.node, now + seconds, session_id, now, self.node),
            )
        return changed == 1

    async def complete_recording(
        self, session_id: str, location: str, sha256: str, size: int
    ) -> bool:
        """Mark the recording joined into its final object; False if it was already."""
        now = time.time()
        values = {"location": location, "completed": now, "sha256": sha256, "size": size}
        async with self.transaction() as tx:
            changed = await tx.execute(
                "UPDATE recordings SET location = ?, completed = ?, sha256 = ?, size = ?,"
                " claimed_by = NULL, claim_until = NULL"
                " WHERE session_id = ? AND completed IS NULL",
                (location, now, sha256, size, session_id),
            )
            if changed:
                await tx.execute(
                    "UPDATE sessions SET recording = ? WHERE id = ?", (location, session_id)
                )
                await self._chain(tx, "recordings", session_id, "update", values)
                await self._chain(tx, "sessions", session_id, "update", {"recording": location})
                await self._publish(tx, "recording.completed", session_id, {"sha256": sha256})
        return bool(changed)

    async def recordings_to_complete(
        self, node_stale_before: float, limit: int = 100
    ) -> list[RecordingRecord]:
        """Recordings not completed whose session ended, or whose node went silent
        (heartbeat older than `node_stale_before`, or none at all), and no one holds."""
        now = time.time()
        rows = await self._all(
            _RECORDING_SELECT + " LEFT JOIN nodes n ON n.name = r.node WHERE r.completed IS NULL"
            " AND (s.ended IS NOT NULL OR n.name IS NULL OR n.heartbeat < ?)"
            " AND (r.claim_until IS NULL OR r.claim_until < ?) ORDER BY r.session_id LIMIT ?",
            (node_stale_before, now, limit),
        )
        return [_recording(row) for row in rows]

    # --- screen text for search -----------------------------------------------------

    async def index_screen(
        self,
        session_id: str,
        lines: Sequence[tuple[float, str]],
        skipped_chars: int = 0,
        error: str | None = None,
    ) -> None:
        """Replace the session's indexed screen text with `lines` (time into it, text)."""
        async with self.transaction() as tx:
            await tx.execute("DELETE FROM screen_text WHERE session_id = ?", (session_id,))
            for start in range(0, len(lines), CHUNK_LINES):
                chunk = lines[start : start + CHUNK_LINES]
                text = "\n".join(line for _, line in chunk)
                await self._insert_screen_chunk(tx, session_id, round(chunk[0][0], 3), text)
            await tx.execute(
                "INSERT INTO screen_indexed (session_id, indexed, lines, skipped_chars, error)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
                " indexed = excluded.indexed, lines = excluded.lines,"
                " skipped_chars = excluded.skipped_chars, error = excluded.error",
                (session_id, time.time(), len(lines), skipped_chars, error),
            )

    async def screen_index_state(self, session_id: str) -> ScreenIndexState | None:
        row = await self._one("SELECT * FROM screen_indexed WHERE session_id = ?", (session_id,))
        return ScreenIndexState(**row) if row else None

    async def unindexed_sessions(self, limit: int = 1000) -> list[UnindexedSession]:
        """Ended sessions with a recording whose screen text is not indexed yet, oldest first."""
        rows = await self._all(
            "SELECT s.id, s.recording, s.kind FROM sessions s"
            " LEFT JOIN screen_indexed i ON i.session_id = s.id"
            " WHERE i.session_id IS NULL AND s.ended IS NOT NULL AND s.recording IS NOT NULL"
            " AND s.kind != 'subsystem' ORDER BY s.started LIMIT ?",
            (limit,),
        )
        return [UnindexedSession(r["id"], r["recording"], r["kind"]) for r in rows]

    async def search_screen(
        self,
        query: str,
        *,
        raw: bool = False,
        identity: str | None = None,
        target: str | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """Matches, newest session first; `query` is a phrase unless `raw` (the backend's
        query syntax: FTS5 on SQLite, websearch on PostgreSQL)."""
        if not query.strip() or len(query) > MAX_QUERY:
            raise UsageError(f"give a search text of 1-{MAX_QUERY} characters")
        rows = await self._search_rows(query, raw, identity, target, limit)
        return [SearchHit(**row) for row in rows]


_RECORDING_SELECT = (
    "SELECT r.session_id, r.location, r.node, s.ended, r.completed, r.sha256, r.size,"
    " (SELECT COUNT(*) FROM recording_chunks c WHERE c.session_id = r.session_id) AS chunks"
    " FROM recordings r JOIN sessions s ON s.id = r.session_id"
)


def _recording(row: Row) -> RecordingRecord:
    return RecordingRecord(**row)


def _session(row: Row) -> SessionRecord:
    return SessionRecord(**row)
