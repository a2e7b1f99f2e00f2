"""Everything a running bastion shares between connections."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

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
from bastion.store import Store
from bastion.store.records import AlertRecord, AuditEvent, RequestRecord, SessionEnd, SessionRecord
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
    store: Store
    decider: Decider
    exchange: TokenExchange | None = None
    webhook: Webhook | None = None
    indexer: Indexer | None = None  # screen text for `bastion search`
    alerts: AlertDetector = field(default_factory=AlertDetector)
    alert_webhook: Webhook | None = None
    _sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> identity, target
    flushables: set[Any] = field(default_factory=set)
    live: dict[Any, Identity] = field(default_factory=dict)  # outer connection -> identity
    # Held requests waiting in this process, woken by the store's event feed when a
    # decision is made on any node (bastion/server.py follows the feed).
    request_waiters: dict[int, asyncio.Event] = field(default_factory=dict)
    # State writes under way, and per row (an audit handle, a session id) the newest:
    # a row's writes wait for the one before them, so an update never overtakes its
    # insert; writes of different rows run side by side (PostgreSQL: on several
    # pooled connections).
    _writes: set[asyncio.Future[Any]] = field(default_factory=set)
    _last_write: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    _counting: set[asyncio.Future[Any]] = field(default_factory=set)  # alert counts under way

    async def target(self, name: str) -> Target | None:
        return await self.store.get_target(name)

    async def identity_for(self, cert: CertificateInfo) -> Identity:
        """Turn a verified user certificate into an Identity, or refuse it.

        The certificate must be one this bastion recorded when it signed it
        and must not be revoked; groups come from that record.
        """
        serial = cert.serial
        record = await self.store.get_certificate(serial)
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
        event = AuditEvent.of(**fields)

        async def insert() -> None:
            handle.row_id = await self.store.append_audit(event)

        self._submit(insert, key=("audit", id(handle)))
        outcome = self.alerts.outcome(fields)
        if outcome is None:
            self._watch(lambda: self.alerts.audited(fields))
        else:
            self._count(fields, outcome)
        return handle

    def _count(self, fields: dict[str, Any], outcome: str) -> None:
        """Count a decided command in the store (every node's), then look for alerts."""
        identity = fields.get("identity") or "-"

        async def count() -> None:
            try:
                counts = await self.store.count_command(
                    identity,
                    float(fields["time"]),
                    outcome=outcome,
                    window=self.alerts.thresholds.burst_seconds,
                )
            except Exception as exc:  # the store is down: this node's own counts
                log.warning("alert counters unavailable (%s); counting locally", exc)
                counts = None
            self._watch(lambda: self.alerts.audited(fields, counts))

        task = asyncio.ensure_future(count())
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    def audit_update(self, handle: AuditHandle, **fields: Any) -> None:
        async def update() -> None:
            if handle.row_id is not None:
                await self.store.update_audit(handle.row_id, **fields)

        self._submit(update, key=("audit", id(handle)))
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
        record = SessionRecord(**fields)
        self._submit(lambda: self.store.start_session(record), key=("session", record.id))

    def session_finished(self, session_id: str, **fields: Any) -> None:
        end = SessionEnd(**fields)
        indexer = self.indexer

        async def finish() -> None:
            await self.store.finish_session(session_id, end)
            if indexer is not None:  # after the row says it ended (and exists at all)
                indexer.session_ended(session_id)

        self._submit(finish, key=("session", session_id))
        identity, target = self._sessions.pop(session_id, ("-", None))
        if fields.get("bytes_out"):
            self._watch(
                lambda: self.alerts.output(
                    identity, session_id, target, "the session", int(fields["bytes_out"])
                )
            )

    def raise_alert(self, alert: Alert) -> None:
        """Store, log and announce an alert."""
        log.warning(
            "ALERT %s: %s (identity %s, session %s)",
            alert.kind,
            alert.detail,
            alert.identity,
            alert.session_id,
        )
        record = AlertRecord(**alert.to_json())
        self._submit(lambda: self.store.add_alert(record))
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

    def _submit(self, write: Callable[[], Any], key: Any = None) -> None:
        """Queue a write; writes of one `key` run in the order they were queued."""
        previous = self._last_write.get(key) if key is not None else None

        async def in_order() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await write()

        task = asyncio.ensure_future(in_order())
        task.add_done_callback(_log_failure)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        if key is not None:
            self._last_write[key] = task
            task.add_done_callback(lambda t: self._forget_write(key, t))

    def _forget_write(self, key: Any, task: asyncio.Future[Any]) -> None:
        if self._last_write.get(key) is task:
            del self._last_write[key]

    async def drain_writes(self) -> None:
        """Wait for every queued write (before the store closes)."""
        while self._writes:
            await asyncio.wait(list(self._writes))

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
        revoked = await self.store.revoked_among(serials)
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

    def announce_request(self, request: RequestRecord) -> None:
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

    def request_decided(self, request_id: int) -> None:
        waiter = self.request_waiters.get(request_id)
        if waiter is not None:
            waiter.set()

    async def expire_abandoned_requests_forever(self, interval: float = 5.0) -> None:
        """Expire pending requests whose deadline passed or whose session is gone."""
        while True:
            try:
                now = time.time()
                # the store audits each expiry once, whichever nodes sweep at the same time
                for item in await self.store.expire_requests(now, now - REQUEST_STALE):
                    log.info("request %s expired: %s", item.id, item.reason)
            except Exception:  # keep sweeping; a failed pass is logged, not fatal
                log.exception("expiring abandoned requests failed")
            await asyncio.sleep(interval)

    async def follow_events_forever(self) -> None:
        """Act on decisions made on any node as they are committed (the store's event feed):
        wake the held request that was decided, close connections whose certificate
        was revoked."""
        while True:
            try:
                async for event in self.store.subscribe():
                    if event.kind == "request.decided" and event.ref and event.ref.isdigit():
                        self.request_decided(int(event.ref))
                    elif event.kind == "certificate.revoked":
                        await self.enforce_revocations()
            except Exception:  # keep following; the polls below catch up meanwhile
                log.exception("following the store's events failed; retrying")
                await asyncio.sleep(1.0)

    async def flush_recordings_forever(self, interval: float = 0.1) -> None:
        while True:
            await asyncio.sleep(interval)
            for item in list(self.flushables):
                item.flush()


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
