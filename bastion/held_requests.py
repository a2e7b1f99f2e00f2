"""Requests held in this process: their wake-ups, announcements and expiry.

A held command waits on an Event here; a decision made in this process (a
reviewer over SSH) sets it at once, decisions made elsewhere are read from
the store by the waiting side's poll. The expiry sweep ends pending
requests whose deadline passed or whose session stopped beating.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bastion.notify import Webhook
from bastion.store import Store
from bastion.store.records import RequestRecord

log = logging.getLogger("bastion")

# A held request's session refreshes its heartbeat every HEARTBEAT seconds;
# one silent for REQUEST_STALE seconds has lost its session (crash, restart).
HEARTBEAT = 2.0
REQUEST_STALE = 15.0


class HeldRequests:
    def __init__(self, store: Store, webhook: Webhook | None = None) -> None:
        self._store = store
        self.webhook = webhook
        self._waiters: dict[int, asyncio.Event] = {}

    def waiter(self, request_id: int) -> asyncio.Event:
        return self._waiters.setdefault(request_id, asyncio.Event())

    def forget(self, request_id: int) -> None:
        self._waiters.pop(request_id, None)

    def pending_here(self) -> int:
        return len(self._waiters)

    def decided(self, request_id: int) -> None:
        """A reviewer in this process decided `request_id`: wake its waiter now."""
        waiter = self._waiters.get(request_id)
        if waiter is not None:
            waiter.set()

    def announce(self, request: RequestRecord) -> None:
        """A new held command: a line in the serve log, and the webhook if configured."""
        log.warning(
            "request %s held: %s on %s@%s (rule %s): %s; approve with `bastion approve %s`",
            request.id,
            request.identity,
            request.login,
            request.target,
            request.rule,
            request.command[:200],
            request.id,
        )
        if self.webhook is not None:
            self.webhook.announce({"event": "request.created", "request": request.to_json()})

    async def expire_abandoned_forever(self, interval: float = 5.0) -> None:
        while True:
            try:
                now = time.time()
                # the store audits each expiry once, whichever nodes sweep at the same time
                for item in await self._store.expire_requests(now, now - REQUEST_STALE):
                    log.info("request %s expired: %s", item.id, item.reason)
            except Exception:  # keep sweeping; a failed pass is logged, not fatal
                log.exception("expiring abandoned requests failed")
            await asyncio.sleep(interval)
