"""Live agent connections, and the two reasons one is closed while it runs.

A certificate's validity is checked at login, but a connection can outlive
it (ControlMaster keeps one open for hours): each connection is closed at
its certificate's `valid_before`. A revoked certificate closes its
connections within the poll interval (and at once when the revocation is
made on any node: the store's event feed wakes the check, a poll backs it up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import asyncssh

from bastion.audit import AuditEntry, AuditLog
from bastion.identity.model import Identity
from bastion.store import Store

log = logging.getLogger("bastion")


class Closable(Protocol):
    def disconnect(self, code: int, reason: str) -> None: ...


class LiveConnections:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._audit = audit
        self._live: dict[Closable, Identity] = {}
        self._expiry: dict[Closable, asyncio.TimerHandle] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._live)

    def count_for(self, identity: str) -> int:
        return sum(1 for known in self._live.values() if known.name == identity)

    def authenticated(self, conn: Closable, identity: Identity) -> None:
        """Track `conn` and arm its close at the certificate's end."""
        self._live[conn] = identity
        loop = asyncio.get_running_loop()
        now = self._clock()
        delay = max(0.0, identity.valid_before - now)
        self._expiry[conn] = loop.call_later(delay, self._expired, conn)

    def closed(self, conn: Closable) -> None:
        self._live.pop(conn, None)
        timer = self._expiry.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _expired(self, conn: Closable) -> None:
        self._expiry.pop(conn, None)
        identity = self._live.pop(conn, None)
        if identity is None:
            return
        log.warning(
            "closing %s's connection: certificate %s expired", identity.name, identity.serial
        )
        self._audit.note(
            AuditEntry(kind="expired", identity=identity.name, detail=f"serial {identity.serial}")
        )
        conn.disconnect(
            asyncssh.DISC_BY_APPLICATION,
            f"bastion: certificate serial {identity.serial} expired; log in again",
        )

    async def enforce_revocations_forever(self, interval: float = 5.0) -> None:
        """A safety net: revocations also arrive at once through the store's event feed."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.enforce_revocations()
            except Exception:  # keep enforcing; a failed check is logged, not fatal
                log.exception("revocation check failed")

    async def enforce_revocations(self) -> None:
        serials = sorted({identity.serial for identity in self._live.values()})
        if not serials:
            return
        revoked = await self._store.revoked_among(serials)
        for conn, identity in list(self._live.items()):
            if identity.serial not in revoked:
                continue
            self.closed(conn)
            log.warning(
                "closing %s's connection: certificate %s revoked", identity.name, identity.serial
            )
            self._audit.note(
                AuditEntry(
                    kind="revoked", identity=identity.name, detail=f"serial {identity.serial}"
                )
            )
            conn.disconnect(
                asyncssh.DISC_BY_APPLICATION,
                f"bastion: certificate serial {identity.serial} was revoked",
            )
