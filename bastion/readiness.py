"""What /readyz checks on a running bastion, and the gauges refreshed before a scrape.

Ready means the bastion can do its job for the next agent: the store
takes a write (an audit row must be committed before a command
runs), the recordings directory takes a new file, and the CA keys are
loaded. (An S3 recording store writes through the same local spool, so the
spool is what is checked.) Each check runs its blocking part in a thread with a short timeout.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bastion import metrics
from bastion.context import Bastion
from bastion.identity.authorities import CA_NAMES
from bastion.ops_http import Probes
from bastion.recordings import spool_dir
from bastion.store import Store

CHECK_TIMEOUT = 2.0
MAX_PENDING_COUNTED = 10000  # the gauge saturates here rather than read every row


async def store_problem(store: Store) -> str | None:
    """None if a write transaction begins and commits on the store within the timeout.

    An empty one: it takes the write lock (SQLite) or a pooled connection
    (PostgreSQL) as an audit row would, and writes nothing.
    """

    async def write_nothing() -> None:
        async with store.transaction(write=True):
            pass

    try:
        await asyncio.wait_for(write_nothing(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"the store took no write within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # StoreUnavailable and friends: not ready, say why
        return f"the store takes no writes: {exc}"
    return None


def probes_for(bastion: Bastion) -> Probes:
    async def ready() -> dict[str, str | None]:
        database, recordings = await asyncio.gather(
            store_problem(bastion.store),
            _bounded(recordings_problem, spool_dir(bastion.config.recordings, bastion.state.root)),
        )
        return {
            "database": database,
            "recordings": recordings,
            "keys": keys_problem(bastion),
        }

    async def before_scrape() -> None:
        pending = await asyncio.wait_for(
            bastion.store.list_requests(limit=MAX_PENDING_COUNTED), CHECK_TIMEOUT
        )
        metrics.requests_pending(len(pending))
        metrics.connections_open(len(bastion.connections))

    return Probes(ready=ready, before_scrape=before_scrape)


async def _bounded(check, *args) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return await asyncio.wait_for(asyncio.to_thread(check, *args), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"


def recordings_problem(directory: Path) -> str | None:
    """None if a file can be created (and removed) in the recordings directory."""
    try:
        fd, name = tempfile.mkstemp(prefix=".ready-", dir=directory)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return f"recordings directory {directory} not writable: {exc.strerror or exc}"
    return None


def keys_problem(bastion: Bastion) -> str | None:
    authorities = bastion.authorities
    try:
        for name in CA_NAMES:
            authorities.public_key_line(name)
        authorities.host_key.export_public_key()
    except Exception as exc:  # a key object that cannot even export is not loaded
        return f"CA keys not loaded: {exc}"
    return None
