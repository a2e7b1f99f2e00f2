"""Holding a command for review: the agent's side of a request.

A `review` verdict first looks for a grant (an earlier approval given
`--for` a while, for exactly this command line, identity, target and
login). Otherwise it creates a pending request, announces it (serve log,
webhook), tells the agent how to get it approved, and waits: the decision
is read from the database every half second (so it also arrives from a
reviewer on another node), a progress line goes out every 30 s, and the
request's heartbeat shows the session is still there. A decision taken in
this process (a reviewer over SSH) wakes the wait at once. Timeout, a
disconnect or the agent's Ctrl-C end the wait; all of them deny.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bastion.audit import AuditEntry
from bastion.context import Bastion
from bastion.held_requests import HEARTBEAT
from bastion.store.db import Database
from bastion.store.requests import RequestRepo

POLL_SECONDS = 0.5
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


async def hold_for_review(
    bastion: Bastion,
    held: Held,
    *,
    say: Callable[[str], None],
    gone: Callable[[], bool],
    interrupted: Callable[[], bool] = lambda: False,
) -> tuple[bool, str]:
    """(approved, message for the agent)."""
    grant = await bastion.db.run(
        lambda db: RequestRepo(db).active_grant(
            identity=held.identity,
            target=held.target,
            login=held.login,
            command=held.command,
            now=time.time(),
        )
    )
    if grant is not None:
        _audit(
            bastion,
            held,
            "allow",
            f"grant from request {grant['request_id']} by {grant['granted_by']}",
        )
        left = _human(grant["expires"] - time.time())
        return True, (
            f"bastion: allowed by {grant['granted_by']}'s grant from request "
            f"{grant['request_id']} ({left} left)"
        )
    request_id, request = await bastion.db.run(lambda db: _create(db, held))
    bastion.requests.announce(request)
    _audit(bastion, held, "review", f"request {request_id}")
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


def _audit(bastion: Bastion, held: Held, decision: str, detail: str) -> None:
    bastion.audit.note(
        AuditEntry(
            kind="review",
            session_id=held.session_id,
            identity=held.identity,
            target=held.target,
            login=held.login,
            command=held.command,
            decision=decision,
            rule=held.rule,
            detail=detail,
        )
    )


def _create(db: Database, held: Held) -> tuple[int, dict[str, Any]]:
    now = time.time()
    repo = RequestRepo(db)
    request_id = repo.create(
        identity=held.identity,
        target=held.target,
        login=held.login,
        command=held.command,
        rule=held.rule,
        session_id=held.session_id,
        created=now,
        expires=now + held.timeout,
        approvals_needed=held.approvers,
    )
    return request_id, repo.get(request_id)


async def _wait(
    bastion: Bastion,
    request_id: int,
    held: Held,
    say: Callable[[str], None],
    gone: Callable[[], bool],
    interrupted: Callable[[], bool],
) -> tuple[bool, str]:
    deadline = time.monotonic() + held.timeout
    session_id = held.session_id
    next_progress = time.monotonic() + PROGRESS_SECONDS
    next_beat = time.monotonic() + HEARTBEAT
    while True:
        state, reviewer, reason = await bastion.db.run(lambda db: RequestRepo(db).state(request_id))
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
            ended = await bastion.db.run(
                lambda db, state=state, why=why: RequestRepo(db).finish(
                    request_id, state, reason=why
                )
            )
            if ended:
                bastion.audit.note(
                    AuditEntry(
                        kind=f"review-{state}",
                        session_id=session_id,
                        detail=f"request {request_id}: {why}",
                    )
                )
                if state == "expired":
                    return False, f"bastion: request {request_id} expired without review; denied"
                return False, f"bastion: request {request_id} cancelled"
            continue  # a reviewer decided at the last moment: read the outcome
        now = time.monotonic()
        if now >= next_beat:
            await bastion.db.run(lambda db: RequestRepo(db).heartbeat(request_id, time.time()))
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
