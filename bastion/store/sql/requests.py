"""Held commands, their approvals, and grants.

Every transition is one transaction that first locks the request's row
(PostgreSQL: `SELECT ... FOR UPDATE`; SQLite: `BEGIN IMMEDIATE` takes the
write lock), so two reviewers racing on two nodes, or a reviewer racing the
timeout, give exactly one outcome. Each transition writes its audit row and
a `request.decided` event in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from bastion.errors import NotFound
from bastion.store.errors import Conflict, RequestClosed
from bastion.store.records import (
    REQUEST_STATES,
    Approval,
    ApprovalOutcome,
    AuditEvent,
    ExpiredRequest,
    Grant,
    NewRequest,
    RequestRecord,
    RequestState,
)
from bastion.store.sql.audit import AuditOps
from bastion.store.sql.tx import Row, Tx


class RequestOps(AuditOps):
    #: appended to the SELECT that reads a request before changing it
    lock_row: str = ""

    # --- the holding session's side ------------------------------------------------

    async def create_request(
        self, request: NewRequest, audit: AuditEvent | None = None
    ) -> RequestRecord:
        values = asdict(request)
        values["heartbeat"] = request.created
        values["node"] = self.node
        marks = ", ".join("?" for _ in values)
        async with self.transaction() as tx:
            row = await tx.one(
                f"INSERT INTO requests ({', '.join(values)}) VALUES ({marks}) RETURNING id",
                tuple(values.values()),
            )
            assert row is not None
            request_id = int(row["id"])
            if audit is not None:
                await self._append_audit(tx, _with_detail(audit, f"request {request_id}"))
            await self._publish(tx, "request.created", request_id)
            return await self._get(tx, request_id)

    async def request_state(self, request_id: int) -> RequestState:
        row = await self._one(
            "SELECT state, reviewer, reason FROM requests WHERE id = ?", (request_id,)
        )
        if row is None:
            raise NotFound(f"no request {request_id}")
        return RequestState(row["state"], row["reviewer"], row["reason"])

    async def heartbeat_request(self, request_id: int, now: float) -> None:
        async with self.transaction() as tx:
            await tx.execute(
                "UPDATE requests SET heartbeat = ? WHERE id = ? AND state = 'pending'",
                (now, request_id),
            )

    async def finish_request(
        self,
        request_id: int,
        state: str,
        *,
        reviewer: str | None = None,
        reason: str | None = None,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Move a pending request to `state` (expired, cancelled...); False if it was
        no longer pending. `audit` is written only if this call made the change."""
        if state not in REQUEST_STATES[1:]:
            raise ValueError(f"not a final request state: {state!r}")
        async with self.transaction() as tx:
            changed = await tx.execute(
                "UPDATE requests SET state = ?, decided = ?, reviewer = ?, reason = ?"
                " WHERE id = ? AND state = 'pending'",
                (state, time.time(), reviewer, reason, request_id),
            )
            if changed:
                if audit is not None:
                    await self._append_audit(tx, audit)
                await self._publish(tx, "request.decided", request_id, {"state": state})
        return changed == 1

    async def expire_requests(self, now: float, stale_before: float) -> list[ExpiredRequest]:
        """Expire pending requests past their deadline, or whose holder stopped beating
        (its session is gone: a crash, a restart, another node). Each expiry is
        audited once, whichever nodes sweep at the same time."""
        async with self.transaction() as tx:
            rows = await tx.all(
                "UPDATE requests SET state = 'expired', decided = ?, reason = CASE"
                " WHEN expires < ? THEN 'no review in time' ELSE 'the held session is gone' END"
                " WHERE state = 'pending' AND (expires < ? OR COALESCE(heartbeat, created) < ?)"
                " RETURNING id, reason",
                (now, now, now, stale_before),
            )
            expired = sorted(
                (ExpiredRequest(int(r["id"]), r["reason"]) for r in rows), key=lambda e: e.id
            )
            for item in expired:
                await self._append_audit(
                    tx,
                    AuditEvent(kind="review-expired", detail=f"request {item.id}: {item.reason}"),
                )
                await self._publish(tx, "request.decided", item.id, {"state": "expired"})
        return expired

    # --- the reviewer's side -------------------------------------------------------

    async def get_request(self, request_id: int) -> RequestRecord:
        async with self.transaction(write=False) as tx:
            return await self._get(tx, request_id)

    async def list_requests(
        self, *, include_decided: bool = False, after_id: int = 0, limit: int = 1000
    ) -> list[RequestRecord]:
        """The newest `limit` requests after `after_id` (pending only, unless
        `include_decided`), oldest first."""
        where = "id > ?" + ("" if include_decided else " AND state = 'pending'")
        async with self.transaction(write=False) as tx:
            rows = await tx.all(
                f"SELECT * FROM requests WHERE {where} ORDER BY id DESC LIMIT ?", (after_id, limit)
            )
            approvals: dict[int, list[Approval]] = {}
            if rows:
                marks = ", ".join("?" for _ in rows)
                for a in await tx.all(
                    f"SELECT request_id, reviewer, decided, reason FROM approvals"
                    f" WHERE request_id IN ({marks}) ORDER BY decided",
                    [r["id"] for r in rows],
                ):
                    approvals.setdefault(a["request_id"], []).append(
                        Approval(a["reviewer"], a["decided"], a["reason"])
                    )
        return [_request(row, approvals.get(row["id"], [])) for row in reversed(rows)]

    async def approve_request(
        self,
        request_id: int,
        reviewer: str,
        reason: str | None,
        now: float,
        audit: AuditEvent | None = None,
    ) -> ApprovalOutcome:
        """Record one reviewer's approval; the request is approved once enough distinct
        reviewers have. `audit` (its decision filled in here) goes in the same transaction."""
        async with self.transaction() as tx:
            request = await self._pending(tx, request_id, now)
            try:
                await tx.execute(
                    "INSERT INTO approvals (request_id, reviewer, decided, reason) VALUES (?, ?, ?, ?)",
                    (request_id, reviewer, now, reason),
                )
            except Conflict:
                raise RequestClosed(
                    f"request {request_id}: {reviewer} has already approved it; "
                    "it needs another reviewer"
                ) from None
            approvals = await _approvals(tx, request_id)
            needed = request.approvals_needed or 1
            done = len(approvals) >= needed
            if audit is not None:
                decision = "approved" if done else "approval"
                await self._append_audit(tx, _with_decision(audit, decision))
            if not done:
                return ApprovalOutcome("pending", len(approvals), needed)
            reasons = "; ".join(a.reason for a in approvals if a.reason)
            await tx.execute(
                "UPDATE requests SET state = 'approved', decided = ?, reviewer = ?, reason = ?"
                " WHERE id = ? AND state = 'pending'",
                (now, ", ".join(a.reviewer for a in approvals), reasons or None, request_id),
            )
            await self._publish(tx, "request.decided", request_id, {"state": "approved"})
            return ApprovalOutcome("approved", len(approvals), needed)

    async def deny_request(
        self,
        request_id: int,
        reviewer: str,
        reason: str | None,
        now: float,
        audit: AuditEvent | None = None,
    ) -> None:
        async with self.transaction() as tx:
            await self._pending(tx, request_id, now)
            await tx.execute(
                "UPDATE requests SET state = 'denied', decided = ?, reviewer = ?, reason = ?"
                " WHERE id = ? AND state = 'pending'",
                (now, reviewer, reason, request_id),
            )
            if audit is not None:
                await self._append_audit(tx, _with_decision(audit, "denied"))
            await self._publish(tx, "request.decided", request_id, {"state": "denied"})

    async def _pending(self, tx: Tx, request_id: int, now: float) -> RequestRecord:
        row = await tx.one(f"SELECT * FROM requests WHERE id = ?{self.lock_row}", (request_id,))
        if row is None:
            raise NotFound(f"no request {request_id}")
        if row["state"] != "pending":
            raise RequestClosed(f"request {request_id} is already {row['state']}")
        if row["expires"] < now:
            raise RequestClosed(f"request {request_id} has expired")
        return _request(row, [])

    async def _get(self, tx: Tx, request_id: int) -> RequestRecord:
        row = await tx.one("SELECT * FROM requests WHERE id = ?", (request_id,))
        if row is None:
            raise NotFound(f"no request {request_id}")
        return _request(row, await _approvals(tx, request_id))

    # --- grants ----------------------------------------------------------------------

    async def add_grant(
        self, request: RequestRecord, granted_by: str, now: float, seconds: int
    ) -> int:
        async with self.transaction() as tx:
            row = await tx.one(
                "INSERT INTO grants (request_id, identity, target, login, command, granted_by,"
                " created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    request.id,
                    request.identity,
                    request.target,
                    request.login,
                    request.command,
                    granted_by,
                    now,
                    now + seconds,
                ),
            )
        assert row is not None
        return int(row["id"])

    async def active_grant(
        self, *, identity: str, target: str, login: str, command: str, now: float
    ) -> Grant | None:
        """A grant for exactly this command line, identity, target and login, still valid."""
        row = await self._one(
            "SELECT * FROM grants WHERE identity = ? AND target = ? AND login = ? AND command = ?"
            " AND expires > ? ORDER BY expires DESC LIMIT 1",
            (identity, target, login, command, now),
        )
        return Grant(**row) if row is not None else None


async def _approvals(tx: Tx, request_id: int) -> list[Approval]:
    rows = await tx.all(
        "SELECT reviewer, decided, reason FROM approvals WHERE request_id = ? ORDER BY decided",
        (request_id,),
    )
    return [Approval(r["reviewer"], r["decided"], r["reason"]) for r in rows]


def _request(row: Row, approvals: list[Approval]) -> RequestRecord:
    return RequestRecord(**row, approvals=tuple(approvals))


def _with_decision(audit: AuditEvent, decision: str) -> AuditEvent:
    return AuditEvent(**(asdict(audit) | {"decision": decision}))


def _with_detail(audit: AuditEvent, detail: str) -> AuditEvent:
    return AuditEvent(**(asdict(audit) | {"detail": audit.detail or detail}))
