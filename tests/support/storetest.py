"""Two store instances on one database, as two bastion nodes (the contract suite's unit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bastion.store import Store, open_store


@asynccontextmanager
async def two_nodes(url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Node A creates the database; node B opens the same one."""
    a = open_store(url, node="node-a", create=True)
    await a.open()
    b = open_store(url, node="node-b")
    try:
        await b.open()
        yield a, b
    finally:
        await b.close()
        await a.close()
