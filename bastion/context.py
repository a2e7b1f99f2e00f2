"""Everything a running bastion shares between connections."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from bastion import logs, metrics, observe
from bastion.alerts import Alert, AlertDetector
from bastion.config import Config
from bastion.decide import Decider
from bastion.exchange import TokenExchange
from bastion.identity.authorities import Authorities
from bastion.identity.certinfo import CertificateInfo
from bastion.identity.model import Identity
from bastion.identity.roles import grants_for
from bastion.notify import Webhook
from bastion.search import Indexer
from bastion.statedir import StateDir
from bastion.store.alerts import AlertRepo
from bastion.store.db import AsyncDatabase, Database
from bastion.store.repos import AuditRepo, CertificateRepo, SessionRepo, TargetRepo
from bastion.store.requests import RequestRepo
from bastion.targets import Target

log = logging.getLogger("bastion")

# A held request's session refreshes its heartbeat every HEARTBEAT seconds;
# one silent for REQUEST_STALE seconds has lost its session (crash, restart).
HEARTBEAT = 2.0
REQUEST_STALE = 15.0


class IdentityRefused(Exception):
    """The certificate was valid cryptographically but must not be let in."""


@dataclass
class Bastion:
    state: StateDir
    config: Config
    authorities: Authorities
    db: AsyncDatabase
    decider: Decider
    exchange: TokenExchange | None = None
    webhook: Webhook | None = None
    indexer: Indexer | None = None  # screen text for `bastion search`
    alerts: AlertDetector = field(default_factory=AlertDetector)
    alert_webhook: Webhook | None = None
    _sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> identity, target
    flushables: set[Any] = field(default_factory=set)
    live: dict[Any, Identity] = field(default_factory=dict)  # outer connection -> identity
    # Held requests waiting in this process: a decision made here wakes them at once
    # (decisions made elsewhere are read from the database on the next poll).
    request_waiters: dict[int, asyncio.Event] = field(default_factory=dict)

    async def target(self, name: str) -> Target | None:
        return await self.db.run(lambda db: TargetRepo(db).get(name))

    async def identity_for(self, cert: CertificateInfo) -> Identity:
        """Turn a verified user certificate into an Identity, or refuse it.

        The certificate must be one this bastion recorded when it signed it
        and must not be revoked; groups come from that record.
        """
        serial = cert.serial
        record = await self.db.run(lambda db: CertificateRepo(db).get(serial))
        if record is None:
            raise IdentityRefused(f"certificate serial {serial} is unknown to this bastion")
        if record.revoked is not None:
            raise IdentityRefused(f"certificate serial {serial} is revoked")
        grants = None
        if self.config.roles_enforced:
            issuer = record.source.split(":", 1)[1] if record.source.startswith("oidc:") else None
            grants = grants_for(self.config.roles, {"sub": cert.key_id}, record.groups, issuer)
            if not grants.any:
                raise IdentityRefused(f"no role grants {cert.key_id!r} access")
        return Identity(
            name=cert.key_id,
            principals=tuple(cert.principals),
            groups=record.groups,
            serial=serial,
            valid_before=float(record.valid_before),
            grants=grants,
        )

    def audit(self, **fields: Any) -> AuditHandle:
        """Queue an audit row; returns a handle whose row id a later update can use."""
        handle = AuditHandle(
            identity=fields.get("identity"),
            session_id=fields.get("session_id"),
            target=fields.get("target"),
            command=fields.get("command"),
        )
        fields.setdefault("time", time.time())

        def insert(db: Database) -> None:
            handle.row_id = AuditRepo(db).add(**fields)

        self._submit(insert)
        observe.audited(fields)
        self._watch(lambda: self.alerts.audited(fields))
        return handle

    def audit_update(self, handle: AuditHandle, **fields: Any) -> None:
        def update(db: Database) -> None:
            if handle.row_id is not None:
                AuditRepo(db).update(handle.row_id, **fields)

        self._submit(update)
        if fields.get("bytes_out"):
            what = f"command {handle.command[:80]!r}" if handle.command else "a command"
            self._watch(
                lambda: self.alerts.output(
                    handle.identity or "-",
                    handle.session_id,
                    handle.target,
                    what,
                    int(fields["bytes_out"]),
                )
            )

    def session_started(self, **fields: Any) -> None:
        self._sessions[fields["id"]] = (fields.get("identity") or "-", fields.get("target") or "")
        metrics.session_started(fields["id"], fields.get("kind") or "other")
        self._submit(lambda db: SessionRepo(db).start(**fields))

    def session_finished(self, session_id: str, **fields: Any) -> None:
        self._submit(lambda db: SessionRepo(db).finish(session_id, **fields))
        metrics.session_finished(session_id, fields.get("bytes_in"), fields.get("bytes_out"))
        identity, target = self._sessions.pop(session_id, ("-", None))
        if fields.get("bytes_out"):
            self._watch(
                lambda: self.alerts.output(
                    identity, session_id, target, "the session", int(fields["bytes_out"])
                )
            )
        if self.indexer is not None:
            self.indexer.session_ended(session_id)

    def raise_alert(self, alert: Alert) -> None:
        """Store, log and announce an alert."""
        metrics.alert_raised(alert.kind)
        log.warning(
            "ALERT %s: %s (identity %s, session %s)",
            alert.kind,
            alert.detail,
            alert.identity,
            alert.session_id,
            extra=logs.fields("alert", alert.identity, alert.session_id, alert.target),
        )
        self._submit(lambda db: AlertRepo(db).add(**alert.to_json()))
        if self.alert_webhook is not None:
            self.alert_webhook.announce({"event": "alert.raised", "alert": alert.to_json()})

    def _watch(self, detect: Callable[[], list[Alert]]) -> None:
        """Run an alert detector; a failing detector is logged, never breaks the session."""
        try:
            alerts = detect()
        except Exception:
            log.exception("alert detection failed")
            return
        for alert in alerts:
            self.raise_alert(alert)

    def _submit(self, fn: Any) -> None:
        """Fire-and-forget a write; the single DB thread keeps them in order."""
        task = asyncio.ensure_future(self.db.run(fn))
        task.add_done_callback(_log_failure)

    def connection_authenticated(self, conn: Any, identity: Identity) -> None:
        self.live[conn] = identity

    def connection_closed(self, conn: Any) -> None:
        self.live.pop(conn, None)

    async def enforce_revocations_forever(self, interval: float = 2.0) -> None:
        """Close every live connection whose certificate was revoked since it logged in."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.enforce_revocations()
            except Exception:  # keep enforcing; a failed check is logged, not fatal
                log.exception("revocation check failed")

    async def enforce_revocations(self) -> None:
        serials = sorted({identity.serial for identity in self.live.values()})
        if not serials:
            return
        revoked = await self.db.run(lambda db: CertificateRepo(db).revoked_among(serials))
        for conn, identity in list(self.live.items()):
            if identity.serial in revoked:
                self.live.pop(conn, None)
                log.warning(
                    "closing %s's connection: certificate %s revoked",
                    identity.name,
                    identity.serial,
                )
                self.audit(
                    kind="revoked", identity=identity.name, detail=f"serial {identity.serial}"
                )
                conn.disconnect(
                    asyncssh.DISC_BY_APPLICATION,
                    f"bastion: certificate serial {identity.serial} was revoked",
                )

    def announce_request(self, request: dict[str, Any]) -> None:
        """A new held command: a line in the serve log, and the webhook if configured."""
        log.warning(
            "request %s held: %s on %s@%s (rule %s): %s; approve with `bastion approve %s`",
            request["id"],
            request["identity"],
            request["login"],
            request["target"],
            request["rule"],
            request["command"][:200],
            request["id"],
        )
        if self.webhook is not None:
            self.webhook.announce({"event": "request.created", "request": request})

    def request_decided(self, request_id: int) -> None:
        waiter = self.request_waiters.get(request_id)
        if waiter is not None:
            waiter.set()

    async def expire_abandoned_requests_forever(self, interval: float = 5.0) -> None:
        """Expire pending requests whose deadline passed or whose session is gone."""
        while True:
            try:
                expired = await self.db.run(_expire_abandoned)
                for request_id in expired:
                    log.info(
                        "request %s expired (its session is gone or its time ran out)", request_id
                    )
                    self.audit(kind="review-expired", detail=f"request {request_id}")
            except Exception:  # keep sweeping; a failed pass is logged, not fatal
                log.exception("expiring abandoned requests failed")
            await asyncio.sleep(interval)

    async def flush_recordings_forever(self, interval: float = 0.1) -> None:
        while True:
            await asyncio.sleep(interval)
            for item in list(self.flushables):
                item.flush()


def _expire_abandoned(db: Database) -> list[int]:
    now = time.time()
    return RequestRepo(db).expire_abandoned(now - REQUEST_STALE, now)


@dataclass
class AuditHandle:
    row_id: int | None = None
    identity: str | None = None
    session_id: str | None = None
    target: str | None = None
    command: str | None = None


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("state write failed: %s", task.exception())
