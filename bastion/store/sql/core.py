"""What every SQL operation stands on: transactions, the audit chain, the outbox, migrations."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any

from bastion.store import chain
from bastion.store.records import ChainHead, Event
from bastion.store.sql.tx import Row, Tx

EVENT_BATCH = 500


class Wakeups:
    """Subscribers waiting for new events; a wake-up reaches every one of them.

    A subscriber notes `generation` before it reads the outbox and waits
    `since` it: a wake-up that came while it was reading is not missed.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._waiting: set[asyncio.Event] = set()

    def wake_all(self) -> None:
        self.generation += 1
        for event in list(self._waiting):
            event.set()

    async def wait(self, timeout: float, since: int) -> None:
        if self.generation != since:
            return
        event = asyncio.Event()
        self._waiting.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiting.discard(event)


class SqlCore:
    """The parts of a store every domain operation uses; backends fill in the hooks."""

    #: the package whose migrations/ directory holds this backend's numbered SQL files
    migrations_package: str = ""
    #: how long a subscriber waits before re-reading the outbox when no wake-up came
    poll_interval: float = 1.0

    def __init__(self, node: str) -> None:
        self.node = node
        self.wakeups = Wakeups()

    # --- hooks a backend provides ---------------------------------------------------

    def transaction(self, *, write: bool = True) -> AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    async def _notify(self, tx: Tx, event_id: int) -> None:
        """Announce an event to other processes inside `tx` (PostgreSQL: NOTIFY)."""

    async def _lock_migrations(self, tx: Tx) -> None:
        """Serialise schema migrations between processes starting at once."""

    # --- small helpers --------------------------------------------------------------

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.transaction(write=False) as tx:
            return await tx.one(sql, params)

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.transaction(write=False) as tx:
            return await tx.all(sql, params)

    # --- the audit chain ------------------------------------------------------------

    async def _chain(
        self, tx: Tx, table: str, key: str | int, op: str, fields: dict[str, Any]
    ) -> str:
        """Journal one write in `tx`, which made it.

        The one-row head is updated first: its row lock makes every other
        writer wait until this transaction commits, and the waiting one then
        reads the new head, so the chain cannot fork (a `SELECT ... FOR
        UPDATE` of the newest entry would: the waiter re-reads a row that is
        no longer the newest).
        """
        head = await tx.one("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        assert head is not None, "audit_head row missing"
        fields_json = chain.canonical(fields)
        digest = chain.entry_hash(head["hash"], op, chain.ref(table, str(key)), fields_json)
        await tx.execute(
            "INSERT INTO audit_chain (seq, tbl, row_key, op, fields, prev, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (head["seq"], table, str(key), op, fields_json, head["hash"], digest),
        )
        await tx.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (digest,))
        return digest

    async def chain_head(self) -> ChainHead:
        row = await self._one("SELECT seq, hash FROM audit_head WHERE id = 1")
        return ChainHead(row["seq"], row["hash"]) if row else ChainHead(0, chain.GENESIS)

    async def verify_chain(self, anchor: str | None = None) -> chain.Verification:
        """Replay the chain against every chained table (bastion/store/chain.py)."""
        replay = chain.Replay(anchor)
        async with self.transaction(write=False) as tx:
            for row in await tx.all(
                "SELECT seq, tbl, row_key, op, fields, prev, hash FROM audit_chain ORDER BY seq"
            ):
                replay.entry(
                    row["seq"], row["tbl"], row["row_key"], row["op"], row["fields"],
                    row["prev"], row["hash"],
                )  # fmt: skip
            for spec in chain.CHAINED.values():
                names = ", ".join(spec.columns)
                for row in await tx.all(f"SELECT {spec.key}, {names} FROM {spec.name}"):
                    key = row.pop(spec.key)
                    replay.row(spec.name, str(key), row)
            head = await tx.one("SELECT seq, hash FROM audit_head WHERE id = 1")
        return replay.finish((head["seq"], head["hash"]) if head else None)

    # --- the event feed (outbox) ----------------------------------------------------

    async def _publish(
        self, tx: Tx, kind: str, ref: str | int | None, payload: dict[str, Any] | None = None
    ) -> int:
        """Write an event in the same transaction as the change it announces.

        Ids come from a one-row counter updated under its row lock, so they
        are committed in the order they are handed out: a reader that has
        seen id N can never later find an id below N appear.
        """
        row = await tx.one("UPDATE outbox_head SET id = id + 1 WHERE one = 1 RETURNING id")
        assert row is not None, "outbox_head row missing"
        await tx.execute(
            "INSERT INTO outbox (id, time, kind, ref, node, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (
                row["id"],
                time.time(),
                kind,
                None if ref is None else str(ref),
                self.node,
                json.dumps(payload or {}, sort_keys=True),
            ),
        )
        tx.published = True
        await self._notify(tx, row["id"])
        return int(row["id"])

    async def publish(
        self, kind: str, ref: str | int | None = None, payload: dict[str, Any] | None = None
    ) -> int:
        async with self.transaction() as tx:
            return await self._publish(tx, kind, ref, payload)

    async def events_after(self, after: int, limit: int = EVENT_BATCH) -> list[Event]:
        rows = await self._all(
            "SELECT id, time, kind, ref, node, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [
            Event(
                r["id"], r["time"], r["kind"], r["ref"], r["node"], Event.load_payload(r["payload"])
            )
            for r in rows
        ]

    async def last_event_id(self) -> int:
        row = await self._one("SELECT id FROM outbox_head WHERE one = 1")
        return int(row["id"]) if row else 0

    async def prune_events(self, before: float) -> int:
        async with self.transaction() as tx:
            return await tx.execute("DELETE FROM outbox WHERE time < ?", (before,))

    async def subscribe(self, after: int | None = None) -> AsyncIterator[Event]:
        """Every event after `after` (default: from now on), in order, for ever.

        Woken by the backend (NOTIFY, or a write through this store) and by
        a poll; after every wake-up the outbox is read past the last id seen,
        so a wake-up that was lost (a listener reconnecting) loses nothing.
        """
        last = await self.last_event_id() if after is None else after
        while True:
            seen = self.wakeups.generation
            events = await self.events_after(last)
            for event in events:
                last = event.id
                yield event
            if len(events) < EVENT_BATCH:
                await self.wakeups.wait(self.poll_interval, seen)

    def _committed(self, tx: Tx) -> None:
        """Called by a backend after `tx` committed."""
        if tx.published:
            self.wakeups.wake_all()

    # --- migrations -----------------------------------------------------------------

    def _migration_files(self) -> list[tuple[int, str]]:
        found = []
        for entry in resources.files(self.migrations_package).joinpath("migrations").iterdir():
            if entry.name.endswith(".sql"):
                found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
        return sorted(found)

    async def migrate(self) -> int:
        """Apply every migration newer than the recorded version; return the version."""
        applied = False
        current = 0
        for version, sql in self._migration_files():
            async with self.transaction() as tx:
                await self._lock_migrations(tx)
                await tx.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, applied DOUBLE PRECISION)"
                )
                row = await tx.one("SELECT MAX(version) AS v FROM schema_migrations")
                current = int(row["v"] or 0) if row else 0
                if version <= current:
                    continue
                for statement in split_sql(sql):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                    (version, time.time()),
                )
                current, applied = version, True
        if applied:
            await self._adopt_unchained()
        return current

    async def _adopt_unchained(self) -> None:
        """Journal rows of tables that joined the chain after they were written.

        From then on an edit or deletion of them shows like any other; what
        they held before the adoption is taken as it stood.
        """
        async with self.transaction() as tx:
            for spec in chain.CHAINED.values():
                if spec.name == "audit":
                    continue  # audit rows older than the chain are reported as unchained
                names = ", ".join(spec.columns)
                rows = await tx.all(
                    f"SELECT {spec.key}, {names} FROM {spec.name} t WHERE NOT EXISTS"
                    f" (SELECT 1 FROM audit_chain c WHERE c.tbl = ?"
                    f" AND c.row_key = CAST(t.{spec.key} AS TEXT))",
                    (spec.name,),
                )
                for row in rows:
                    key = row.pop(spec.key)
                    await self._chain(tx, spec.name, key, "insert", row)


def split_sql(sql: str) -> list[str]:
    """Split a migration file into statements (our files hold no ';' in strings)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
