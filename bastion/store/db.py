"""Connection handling and versioned schema migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TypeVar

from bastion.errors import BastionError

T = TypeVar("T")


def _migrations() -> list[tuple[int, str]]:
    """Numbered SQL files shipped in bastion/store/migrations, in order."""
    found = []
    for entry in resources.files("bastion.store").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


class Database:
    """One SQLite connection to the state database, schema kept current."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.is_file():
            raise BastionError(f"no database at {path}: run `bastion init` first")
        self.path = path
        self.conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self.migrate()

    def migrate(self) -> int:
        """Apply every migration newer than the recorded version; return the version."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied REAL)"
        )
        current = self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
        for version, sql in _migrations():
            if version <= current:
                continue
            with self.transaction():
                for statement in _split_sql(sql):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                    (version, time.time()),
                )
            current = version
        return current

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()


def _split_sql(sql: str) -> list[str]:
    """Split a migration file into statements (our files hold no ';' in strings)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class AsyncDatabase:
    """Runs repository calls on one worker thread, off the event loop.

    sqlite3 connections belong to the thread that made them, so the
    connection is opened inside the worker.
    """

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-db")
        self._db: Database = self._executor.submit(Database, path).result()

    async def run(self, fn: Callable[[Database], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._db)

    def run_sync(self, fn: Callable[[Database], T]) -> T:
        return self._executor.submit(fn, self._db).result()

    def close(self) -> None:
        try:
            self._executor.submit(self._db.close).result()
        finally:
            self._executor.shutdown(wait=True)
