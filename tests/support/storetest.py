"""Two store instances on one database, as two bastion nodes (the contract suite's unit)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bastion.store import Store, open_store
from bastion.store.records import CertificateRecord


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


def certificate(serial: int, identity: str = "alice@example.com") -> CertificateRecord:
    now = time.time()
    return CertificateRecord(
        serial=serial,
        identity=identity,
        principals=("deploy", "ops"),
        groups=("deployers",),
        key_fingerprint="SHA256:abc",
        valid_after=now - 60,
        valid_before=now + 600,
        issued=now,
        source="oidc:https://issuer.example",
        key_id=identity,
    )
