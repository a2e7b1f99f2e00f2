"""The embedded backend: one SQLite file (stdlib sqlite3), FTS5 for screen text.

Each store instance owns two connections, each on its own worker thread
(sqlite3 connections belong to the thread that made them), so SQL never
runs on the event loop: one for write transactions, one for reads. In WAL
mode a reader never waits for a writer, so a write stuck on a lock held by
another process (up to the busy timeout) does not stall logins, lookups or
the decision that a command cannot be audited. Transactions on one
connection run one at a time (an asyncio lock each); several instances, in one process or several, share the file and
are serialised by SQLite itself: every write transaction starts with
`BEGIN IMMEDIATE`, which takes the write lock before reading anything.
There is no NOTIFY: other processes see new events by polling the outbox,
writes through this instance wake its own subscribers at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from bastion.errors import UsageError
from bastion.store.errors import Conflict, StoreError, StoreUnavailable
from bastion.store.sql.store import SqlStore
from bastion.store.sql.tx import Row

T = TypeVar("T")
BUSY_TIMEOUT_MS = 10000


def path_of(url: str) -> Path:
    """`sqlite:///abs/path.db` (or `sqlite:relative.db`) to a path."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc not in ("", "localhost"):
        raise UsageError(f"not an SQLite URL: {url!r} (expected sqlite:///PATH)")
    path = unquote(parts.path)
    if not path:
        raise UsageError(f"no file in SQLite URL {url!r}")
    return Path(path)


class SqliteStore(SqlStore):
    migrations_package = "bastion.store.sqlite"
    poll_interval = 0.2

    def __init__(self, url: str, *, node: str, create: bool = False) -> None:
        super().__init__(node)
        self.url = url
        self.path = path_of(url)
        self.create = create
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._read_executor: ThreadPoolExecutor | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = asyncio.Lock()

    async def open(self) -> None:
        if not self.create and not self.path.is_file():
            raise StoreError(f"no database at {self.path}: run `bastion init` first")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-sqlite")
        self._conn = await self._run(self._connect)
        await self.migrate()
        self._read_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="bastion-sqlite-r"
        )
        self._reader = await self._run_on(self._read_executor, self._connect)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return conn

    async def close(self) -> None:
        if self._read_executor is not None:
            reader, self._reader = self._reader, None
            if reader is not None:
                await self._run_on(self._read_executor, reader.close)
            self._read_executor.shutdown(wait=True)
            self._read_executor = None
        if self._executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._run(conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run_on(self._executor, fn, *args)

    async def _run_on(
        self, executor: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any
    ) -> T:
        if executor is None:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, _translated, fn, *args)

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[_SqliteTx]:
        if not write and self._reader is not None:
            async with self._read_lock:
                tx = _SqliteTx(self, self._reader, self._read_executor)
                await self._run_on(self._read_executor, self._reader.execute, "BEGIN")
                try:
                    yield tx
                finally:
                    await asyncio.shield(self._run_on(self._read_executor, _rollback, self._reader))
            return
        async with self._lock:
            if self._conn is None:
                raise StoreError("the store is closed")
            conn = self._conn
            tx = _SqliteTx(self, conn, self._executor)
            await self._run(conn.execute, "BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield tx
                await self._run(conn.execute, "COMMIT")
            except BaseException:
                await asyncio.shield(self._run(_rollback, conn))
                raise
        self._committed(tx)

    # --- full-text search: FTS5 -----------------------------------------------------

    async def _insert_screen_chunk(self, tx: Any, session_id: str, at: float, text: str) -> None:
        await tx.execute(
            "INSERT INTO screen_text (text, session_id, at) VALUES (?, ?, ?)",
            (text, session_id, at),
        )

    async def _search_rows(
        self, query: str, raw: bool, identity: str | None, target: str | None, limit: int
    ) -> list[Row]:
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
            return await self._all(sql, (*params, limit))
        except StoreUnavailable:
            raise
        except StoreError as exc:  # an FTS5 syntax error in a raw query
            raise UsageError(f"bad search query: {exc}") from None

    async def _screen_chunks(self, limit: int, offset: int) -> list[Row]:
        return await self._all(
            "SELECT session_id, at, text FROM screen_text ORDER BY rowid LIMIT ? OFFSET ?",
            (limit, offset),
        )


class _SqliteTx:
    def __init__(
        self, store: SqliteStore, conn: sqlite3.Connection, executor: ThreadPoolExecutor | None
    ) -> None:
        self._store = store
        self._conn = conn
        self._executor = executor
        self.published = False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._store._run_on(self._executor, _execute, self._conn, sql, tuple(params))

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._store._run_on(self._executor, _fetch, self._conn, sql, tuple(params))


def _execute(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    return conn.execute(sql, params).rowcount


def _fetch(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Row]:
    # fetch everything: an INSERT/UPDATE ... RETURNING is complete only when read to its end
    return [dict(row) for row in conn.execute(sql, params).fetchall()]


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _translated(fn: Callable[..., T], *args: Any) -> T:
    """sqlite3's exceptions, as the store's own."""
    try:
        return fn(*args)
    except sqlite3.IntegrityError as exc:
        raise Conflict(str(exc)) from None
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if any(word in text for word in ("locked", "busy", "unable to open", "disk", "readonly")):
            raise StoreUnavailable(f"database unavailable: {text}") from None
        raise StoreError(text) from None
    except sqlite3.Error as exc:
        raise StoreError(f"database error: {exc}") from None
