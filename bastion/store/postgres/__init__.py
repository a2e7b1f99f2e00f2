"""The shared backend: PostgreSQL through psycopg 3 and its async pool; tsvector search.

Transactions run at READ COMMITTED on pooled connections. What must not
race takes a row lock first: the audit chain's one-row head, the outbox's
id counter, a request's row (`SELECT ... FOR UPDATE`) before it changes
state. Every outbox write also sends `NOTIFY bastion_events` (delivered at
commit); each store keeps one LISTEN connection that wakes its subscribers,
and wakes them again after every reconnect, because a NOTIFY sent while no
one listened is gone: subscribers re-read the outbox past the last id they
saw, so nothing is lost, only later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bastion.errors import UsageError
from bastion.store.errors import Conflict, StoreError, StoreUnavailable
from bastion.store.sql.store import SqlStore
from bastion.store.sql.tx import Row

log = logging.getLogger("bastion.store.postgres")

CHANNEL = "bastion_events"
MIGRATION_LOCK = 0x62617374  # pg_advisory_xact_lock key: "bast"
IDENTITY_TABLES = ("audit", "requests", "grants", "alerts", "config_changes", "screen_text")


class PostgresStore(SqlStore):
    migrations_package = "bastion.store.postgres"
    poll_interval = 5.0  # NOTIFY wakes subscribers; this is only the safety net
    lock_row = " FOR UPDATE"

    def __init__(self, url: str, *, node: str, create: bool = False, pool_size: int = 10) -> None:
        super().__init__(node)
        self.url = url
        self._pool = AsyncConnectionPool(
            url,
            open=False,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,
            timeout=10.0,
            name="bastion",
        )
        self._listener: asyncio.Task[None] | None = None
        self.listener_pid: int | None = None  # the LISTEN connection's backend (tests end it)
        self.listening = asyncio.Event()

    async def open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=10.0)
        except PoolTimeout:
            await self._pool.close()
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {_where(self.url)}") from None
        await self.migrate()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[_PgTx]:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                tx = _PgTx(conn)
                yield tx
        except PoolTimeout:
            raise StoreUnavailable("no PostgreSQL connection free or reachable") from None
        except psycopg.Error as exc:
            raise _translate(exc) from None
        self._committed(tx)

    async def _notify(self, tx: Any, event_id: int) -> None:
        await tx.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(event_id)))

    async def _lock_migrations(self, tx: Any) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    # --- wake-ups: LISTEN ------------------------------------------------------------

    async def subscribe(self, after: int | None = None) -> AsyncIterator[Any]:
        if self._listener is None:
            self._listener = asyncio.ensure_future(self._listen_forever())
        async for event in super().subscribe(after):
            yield event

    async def _listen_forever(self) -> None:
        backoff = 0.05
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listener_pid = conn.info.backend_pid
                    self.listening.set()
                    self.wakeups.wake_all()  # whatever was written while no one listened
                    backoff = 0.05
                    async for _ in conn.notifies():
                        self.wakeups.wake_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; subscribers still poll meanwhile
                log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
            self.listening.clear()
            self.wakeups.wake_all()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    # --- full-text search: tsvector ---------------------------------------------------

    async def _insert_screen_chunk(self, tx: Any, session_id: str, at: float, text: str) -> None:
        await tx.execute(
            "INSERT INTO screen_text (session_id, at, text) VALUES (?, ?, ?)",
            (session_id, at, text),
        )

    async def _search_rows(
        self, query: str, raw: bool, identity: str | None, target: str | None, limit: int
    ) -> list[Row]:
        parse = "websearch_to_tsquery" if raw else "phraseto_tsquery"
        where, params = ["t.tsv @@ q.q"], []
        if identity:
            where.append("s.identity = ?")
            params.append(identity)
        if target:
            where.append("s.target = ?")
            params.append(target)
        sql = (
            "SELECT t.session_id, t.at, ts_headline('simple', t.text, q.q,"
            " 'StartSel=[, StopSel=], MaxWords=16, MinWords=4') AS snippet,"
            " s.identity, s.target, s.login, s.kind, s.command, s.started"
            f" FROM (SELECT {parse}('simple', ?) AS q) q, screen_text t"
            " JOIN sessions s ON s.id = t.session_id"
            f" WHERE {' AND '.join(where)} ORDER BY s.started DESC, t.at LIMIT ?"
        )
        try:
            return await self._all(sql, (query, *params, limit))
        except StoreUnavailable:
            raise
        except StoreError as exc:
            raise UsageError(f"bad search query: {exc}") from None

    async def _screen_chunks(self, limit: int, offset: int) -> list[Row]:
        return await self._all(
            "SELECT session_id, at, text FROM screen_text ORDER BY id LIMIT ? OFFSET ?",
            (limit, offset),
        )

    async def finish_import(self) -> None:
        async with self.transaction() as tx:
            for table in IDENTITY_TABLES:
                await tx.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )


class _PgTx:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        self.published = False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._run(sql, params)
        return max(cursor.rowcount, 0)

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cursor = await self._run(sql, params)
        return await cursor.fetchone() if cursor.description else None

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._run(sql, params)
        return await cursor.fetchall() if cursor.description else []

    async def _run(self, sql: str, params: Sequence[Any]) -> psycopg.AsyncCursor[Any]:
        try:
            return await self._conn.execute(_placeholders(sql), [_value(p) for p in params])
        except psycopg.Error as exc:
            raise _translate(exc) from None


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """The shared SQL's `?` placeholders as psycopg's `%s` (our SQL has no `?` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value  # flags are integer columns


def _translate(exc: psycopg.Error) -> StoreError:
    if isinstance(exc, psycopg.errors.IntegrityError):
        return Conflict(str(exc).splitlines()[0])
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(
            f"database unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        )
    return StoreError(
        f"database error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    )


def _where(url: str) -> str:
    """Host and database of a URL, without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the configured URL"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
