"""Holding a command for review: the agent's side of a request.

A `review` verdict first looks for a grant (an earlier approval given
`--for` a while, for exactly this command line, identity, target and
login). Otherwise it creates a pending request, announces it (serve log,
webhook), tells the agent how to get it approved, and waits: a decision
made on any node wakes the wait through the store's event feed (NOTIFY on
PostgreSQL, a poll of the outbox on SQLite), and the request's state is
also read every POLL_SECONDS in case a wake-up went missing. A progress
line goes out every 30 s, and the request's heartbeat shows the session is
still there. Timeout, a disconnect or the agent's Ctrl-C end the wait; all
of them deny.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass

from bastion.audit import AuditEntry
from bastion.context import Bastion
from bastion.held_requests import HEARTBEAT
from bastion.store import TooManyPending
from bastion.store.records import AuditEvent, NewRequest, RequestRecord

POLL_SECONDS = 2.0
PROGRESS_SECONDS = 30.0


@dataclass(frozen=True)
class Held:
    """What is being held, and for whom."""

    identity: str
    target: str
    login: str
    command: str
    rule: str | None
    session_id: str
    timeout: float
    approvers: int = 1
    explanation: str | None = None  # why it is held, for the reviewer (the verdict's)


async def hold_for_review(
    bastion: Bastion,
    held: Held,
    *,
    say: Callable[[str], None],
    gone: Callable[[], bool],
    interrupted: Callable[[], bool] = lambda: False,
) -> tuple[bool, str]:
    """(approved, message for the agent)."""
    grant = await bastion.store.active_grant(
        identity=held.identity,
        target=held.target,
        login=held.login,
        command=held.command,
        now=time.time(),
    )
    if grant is not None:
        bastion.audit.note(
            AuditEntry(
                **_audit_fields(  # type: ignore[arg-type]
                    held, "allow", f"grant from request {grant.request_id} by {grant.granted_by}"
                )
            )
        )
        left = _human(grant.expires - time.time())
        return True, (
            f"bastion: allowed by {grant.granted_by}'s grant from request "
            f"{grant.request_id} ({left} left)"
        )
    try:
        request = await _create_request(bastion, held)
    except TooManyPending as exc:
        await bastion.audit.record(AuditEntry(**_audit_fields(held, "deny", f"not held: {exc}")))  # type: ignore[arg-type]
        return False, (
            f"bastion: not held for review: {exc.pending} requests of yours are pending already"
            f" (at most {exc.limit}); denied, try again once they are decided"
        )
    request_id = request.id
    bastion.requests.announce(request)
    needs = "" if held.approvers == 1 else f"; needs {held.approvers} approvers"
    say(
        f"bastion: held for review as request {request_id} (rule {held.rule}); "
        f"waiting up to {_human(held.timeout)}{needs}; a reviewer runs `bastion approve {request_id}`"
    )
    bastion.requests.waiter(request_id)
    try:
        return await _wait(bastion, request_id, held, say, gone, interrupted)
    finally:
        bastion.requests.forget(request_id)


async def _create_request(bastion: Bastion, held: Held) -> RequestRecord:
    """The pending request; TooManyPending if its identity has too many already."""
    now = time.time()
    return await bastion.store.create_request(
        NewRequest(
            identity=held.identity,
            target=held.target,
            login=held.login,
            command=held.command,
            rule=held.rule,
            session_id=held.session_id,
            created=now,
            expires=now + held.timeout,
            approvals_needed=held.approvers,
            explanation=held.explanation,
        ),
        audit=AuditEvent(**_audit_fields(held, "review", "")),  # detail: "request N"
        max_pending=bastion.config.approvals.max_pending_per_identity,
    )


def _audit_fields(held: Held, decision: str, detail: str) -> dict[str, object]:
    return {
        "kind": "review",
        "session_id": held.session_id,
        "identity": held.identity,
        "target": held.target,
        "login": held.login,
        "command": held.command,
        "decision": decision,
        "rule": held.rule,
        "detail": detail or None,
    }


async def _wait(
    bastion: Bastion,
    request_id: int,
    held: Held,
    say: Callable[[str], None],
    gone: Callable[[], bool],
    interrupted: Callable[[], bool],
) -> tuple[bool, str]:
    deadline = time.monotonic() + held.timeout
    next_progress = time.monotonic() + PROGRESS_SECONDS
    next_beat = time.monotonic() + HEARTBEAT
    while True:
        state, reviewer, reason = astuple(await bastion.store.request_state(request_id))
        if state == "approved":
            return True, f"bastion: request {request_id} approved by {reviewer}"
        if state == "denied":
            return (
                False,
                f"bastion: request {request_id} denied by {reviewer}: {reason or 'no reason given'}",
            )
        if state != "pending":
            return False, f"bastion: request {request_id} {state}: {reason or 'no reason given'}"
        why = (
            "the agent disconnected"
            if gone()
            else "cancelled by the agent (Ctrl-C)"
            if interrupted()
            else "no review in time"
            if time.monotonic() >= deadline
            else None
        )
        if why is not None:
            state = "expired" if why == "no review in time" else "cancelled"
            ended = await bastion.store.finish_request(
                request_id,
                state,
                reason=why,
                audit=AuditEvent(
                    kind=f"review-{state}",
                    session_id=held.session_id,
                    identity=held.identity,
                    target=held.target,
                    detail=f"request {request_id}: {why}",
                ),
            )
            if ended:
                if state == "expired":
                    return False, f"bastion: request {request_id} expired without review; denied"
                return False, f"bastion: request {request_id} cancelled"
            continue  # a reviewer decided at the last moment: read the outcome
        now = time.monotonic()
        if now >= next_beat:
            await bastion.store.heartbeat_request(request_id, time.time())
            next_beat = now + HEARTBEAT
        if now >= next_progress:
            left = max(0.0, deadline - now)
            say(f"bastion: request {request_id} still waiting for review ({_human(left)} left)")
            next_progress += PROGRESS_SECONDS
        woken = bastion.requests.waiter(request_id)
        try:
            await asyncio.wait_for(woken.wait(), POLL_SECONDS)
        except TimeoutError:
            pass
        woken.clear()


def _human(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
