"""Holding a command for review: a pending request row, progress lines, and the outcome.

The approval workflow (who may approve, `bastion approve`) is its own piece
of work; until a reviewer decides, a held command waits until its request
expires and is then denied. Every state change is one conditional UPDATE,
so a reviewer and the timeout racing give one outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bastion.context import Bastion
from bastion.store.repos import RequestRepo

POLL_SECONDS = 0.5
PROGRESS_SECONDS = 30.0


async def hold_for_review(
    bastion: Bastion,
    *,
    identity: str,
    target: str,
    login: str,
    command: str,
    rule: str | None,
    session_id: str,
    timeout: float,
    say: Callable[[str], None],
    gone: Callable[[], bool],
) -> tuple[bool, str]:
    """(approved, message for the agent). Polls the request until decided, expired or abandoned."""
    now = time.time()
    request_id = await bastion.db.run(
        lambda db: RequestRepo(db).create(
            identity=identity,
            target=target,
            login=login,
            command=command,
            rule=rule,
            session_id=session_id,
            created=now,
            expires=now + timeout,
        )
    )
    bastion.audit(
        kind="review",
        session_id=session_id,
        identity=identity,
        target=target,
        login=login,
        command=command,
        decision="review",
        rule=rule,
        detail=f"request {request_id}",
    )
    say(
        f"bastion: held for review as request {request_id} (rule {rule}); waiting up to {_human(timeout)}"
    )
    deadline = time.monotonic() + timeout
    next_progress = time.monotonic() + PROGRESS_SECONDS
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
            return False, f"bastion: request {request_id} {state}"
        if gone():
            await bastion.db.run(
                lambda db: RequestRepo(db).finish(
                    request_id, "cancelled", reason="agent disconnected"
                )
            )
            return False, f"bastion: request {request_id} cancelled"
        if time.monotonic() >= deadline:
            expired = await bastion.db.run(
                lambda db: RequestRepo(db).finish(request_id, "expired", reason="no review in time")
            )
            if expired:
                return False, f"bastion: request {request_id} expired without review; denied"
            continue  # a reviewer decided at the last moment: read the outcome
        if time.monotonic() >= next_progress:
            left = max(0.0, deadline - time.monotonic())
            say(f"bastion: request {request_id} still waiting for review ({_human(left)} left)")
            next_progress += PROGRESS_SECONDS
        await asyncio.sleep(POLL_SECONDS)


def _human(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
