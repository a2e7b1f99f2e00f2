"""The transaction interface the shared SQL runs on; each backend provides one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Row = dict[str, Any]


class Tx(Protocol):
    """One open transaction: statements run in order, all committed or none."""

    published: bool  # set when an outbox event was written, to wake subscribers after commit

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query (or of an INSERT/UPDATE ... RETURNING)."""

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
