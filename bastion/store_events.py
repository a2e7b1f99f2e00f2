"""Acting on what any node commits: the store's event feed, followed for the whole server.

A decision made on another node wakes the request held here; a revocation
made anywhere closes the connections it names. The feed is NOTIFY-driven on
PostgreSQL and polled on SQLite; the waits and polls of HeldRequests and
LiveConnections remain as safety nets if a wake-up is ever missed.
"""

from __future__ import annotations

import asyncio
import logging

from bastion.connections import LiveConnections
from bastion.held_requests import HeldRequests
from bastion.store import Store

log = logging.getLogger("bastion")


class StoreEvents:
    def __init__(self, store: Store, requests: HeldRequests, connections: LiveConnections) -> None:
        self._store = store
        self._requests = requests
        self._connections = connections

    async def follow_forever(self) -> None:
        while True:
            try:
                async for event in self._store.subscribe():
                    if event.kind == "request.decided" and event.ref and event.ref.isdigit():
                        self._requests.decided(int(event.ref))
                    elif event.kind == "certificate.revoked":
                        await self._connections.enforce_revocations()
            except Exception:  # keep following; the polls catch up meanwhile
                log.exception("following the store's events failed; retrying")
                await asyncio.sleep(1.0)
