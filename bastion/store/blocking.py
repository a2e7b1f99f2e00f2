"""The store's operations for code that is not async: the CLI, setup, tests' helpers.

    >>> with BlockingStore(open_store("sqlite:///tmp/b.db", node="cli", create=True)) as s:
    ...     s.list_targets()
    []

Each call runs the async operation on a private event loop in a thread of
its own, so the one interface serves both worlds and sqlite3/psycopg stay
behind bastion/store/.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bastion.store.sql.store import SqlStore

T = TypeVar("T")


class BlockingStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bastion-store", daemon=True
        )
        self._thread.start()
        try:
            self.call(store.open())
        except BaseException:
            self._stop()
            raise

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine of the store on its loop and wait for the result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self.call(attribute(*args, **kwargs))

        return blocking

    def collect(self, agen_factory: Callable[[], Any]) -> list[Any]:
        """Every item of an async iterator the store returns (for export)."""

        async def gather() -> list[Any]:
            return [item async for item in agen_factory()]

        return self.call(gather())

    def close(self) -> None:
        try:
            self.call(self.store.close())
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> BlockingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
