"""The shared SQL store: every domain operation, plus config changes and copying."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from bastion.store.sql.identity import IdentityOps
from bastion.store.sql.requests import RequestOps
from bastion.store.sql.sessions import SessionOps
from bastion.store.sql.tx import Row

COPY_BATCH = 1000

# Tables `bastion store migrate` copies, parents first, with the column that orders them.
# screen_text is copied through the backends' own full-text hooks; nodes, alert counters
# and the outbox's events are state of running nodes and start afresh.
COPIED_TABLES: tuple[tuple[str, str], ...] = (
    ("targets", "name"),
    ("certificates", "serial"),
    ("identity_revocations", "identity"),
    ("token_uses", "token"),
    ("sessions", "id"),
    ("audit", "id"),
    ("audit_chain", "seq"),
    ("audit_head", "id"),
    ("requests", "id"),
    ("approvals", "request_id, reviewer"),
    ("grants", "id"),
    ("alerts", "id"),
    ("screen_indexed", "session_id"),
    ("recordings", "session_id"),
    ("recording_chunks", "session_id, seq"),
    ("config_changes", "id"),
    ("outbox_head", "one"),
)


class SqlStore(IdentityOps, SessionOps, RequestOps):
    """Domain operations over SQL; `bastion.store.sqlite` and `bastion.store.postgres`
    subclass it with a connection, full-text search and wake-ups of their own."""

    url: str = ""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> SqlStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def record_config(self, sha256: str, detail: str) -> bool:
        """Journal the configuration a node runs with, if it differs from the last one."""
        async with self.transaction() as tx:
            await tx.execute("UPDATE audit_head SET seq = seq WHERE id = 1")  # one writer at a time
            last = await tx.one("SELECT sha256 FROM config_changes ORDER BY id DESC LIMIT 1")
            if last is not None and last["sha256"] == sha256:
                return False
            values = {"time": time.time(), "node": self.node, "sha256": sha256, "detail": detail}
            row = await tx.one(
                "INSERT INTO config_changes (time, node, sha256, detail) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                tuple(values.values()),
            )
            assert row is not None
            await self._chain(tx, "config_changes", row["id"], "insert", values)
            await self._publish(tx, "config.changed", row["id"], {"sha256": sha256})
        return True

    # --- copying between stores (bastion store migrate) -----------------------------

    async def is_empty(self) -> bool:
        """No sessions, audit, certificates or targets yet (a fresh database)."""
        async with self.transaction(write=False) as tx:
            for table in ("audit_chain", "sessions", "certificates", "targets", "requests"):
                if await tx.one(f"SELECT 1 AS x FROM {table} LIMIT 1") is not None:
                    return False
        return True

    async def export_rows(self, table: str, order: str) -> AsyncIterator[list[Row]]:
        """Every row of `table`, in batches, in `order` (a table of COPIED_TABLES)."""
        offset = 0
        while True:
            rows = await self._all(
                f"SELECT * FROM {table} ORDER BY {order} LIMIT ? OFFSET ?", (COPY_BATCH, offset)
            )
            if not rows:
                return
            yield rows
            offset += len(rows)

    async def export_screen_text(self) -> AsyncIterator[list[Row]]:
        offset = 0
        while True:
            rows = await self._screen_chunks(COPY_BATCH, offset)
            if not rows:
                return
            yield rows
            offset += len(rows)

    async def import_rows(self, table: str, rows: list[Row]) -> None:
        """Insert rows as they were (ids included); one transaction per batch."""
        if not rows:
            return
        async with self.transaction() as tx:
            if table in ("audit_head", "outbox_head"):  # the one row exists already
                key = "id" if table == "audit_head" else "one"
                for row in rows:
                    sets = ", ".join(f"{c} = ?" for c in row if c != key)
                    values = [v for c, v in row.items() if c != key]
                    await tx.execute(
                        f"UPDATE {table} SET {sets} WHERE {key} = ?", (*values, row[key])
                    )
                return
            columns = list(rows[0])
            marks = ", ".join("?" for _ in columns)
            for row in rows:
                await tx.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [row[c] for c in columns],
                )

    async def import_screen_text(self, rows: list[Row]) -> None:
        async with self.transaction() as tx:
            for row in rows:
                await self._insert_screen_chunk(tx, row["session_id"], row["at"], row["text"])

    async def finish_import(self) -> None:
        """After rows came in with their ids: let new ids continue past them."""

    async def _screen_chunks(self, limit: int, offset: int) -> list[Row]:
        raise NotImplementedError
