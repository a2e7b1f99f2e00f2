"""The reviewer's side of a held command: who may decide it, and recording the decision.

Shared by `bastion approve` on the bastion host (the operator, `local:USER`)
and by the admin verbs a reviewer runs over SSH with their own certificate
(`ssh -p 2222 alice@bastion approve 42`). The rules:

- a remote reviewer needs a role with `approve = true` that covers the
  request's target; with no `[[role]]` configured nobody approves remotely;
- nobody decides their own request;
- a request needing N approvers is approved by the N-th distinct one;
  a single denial ends it;
- `--for` on the approval that completes a request grants the same command
  line, from the same identity on the same target and login, for that long.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from bastion.durations import parse_duration
from bastion.errors import NotAllowed, UsageError
from bastion.identity.roles import Grants
from bastion.store import Store
from bastion.store.records import AuditEvent, RequestRecord

MAX_REASON = 500
MAX_GRANT_SECONDS = 12 * 3600
LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class Reviewer:
    """`local` reviewers are operators on the bastion host; others come with a certificate."""

    name: str
    local: bool = False
    grants: Grants | None = None  # a remote reviewer's roles; None when no [[role]] exists

    def may_review(self, target: str, labels: Mapping[str, str]) -> bool:
        if self.local:
            return True  # whoever can open the state database is the operator
        return self.grants is not None and self.grants.may_approve(target, labels)


def parse_grant(text: str | None) -> int | None:
    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds > MAX_GRANT_SECONDS:
        raise UsageError(f"--for is at most {MAX_GRANT_SECONDS // 3600}h")
    return seconds


def check_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    if len(reason) > MAX_REASON:
        raise UsageError(f"--reason is longer than {MAX_REASON} characters")
    if not reason.isprintable():  # it is shown on the agent's terminal: no control sequences
        raise UsageError("--reason must be one line of printable text")
    return reason


async def visible_requests(
    store: Store, reviewer: Reviewer, *, include_decided: bool = False, after_id: int = 0
) -> list[RequestRecord]:
    """The requests this reviewer may decide (an operator sees them all)."""
    rows = await store.list_requests(include_decided=include_decided, after_id=after_id)
    if reviewer.local:
        return rows
    visible = []
    for row in rows:
        target = await store.get_target(row.target)
        labels = target.labels if target is not None else {}
        if reviewer.may_review(row.target, labels):
            visible.append(row)
    return visible


async def show_request(store: Store, reviewer: Reviewer, request_id: int) -> RequestRecord:
    request = await store.get_request(request_id)
    await _authorise(store, reviewer, request)
    return request


async def decide(
    store: Store,
    reviewer: Reviewer,
    request_id: int,
    *,
    approve: bool,
    reason: str | None = None,
    grant_seconds: int | None = None,
) -> str:
    """Record `reviewer`'s decision on a pending request; returns a one-line outcome.

    The decision, its audit row and the event that wakes the held command
    (on whichever node holds it) are one transaction.
    """
    reason = check_reason(reason)
    if reviewer.local is False and reviewer.name.startswith(LOCAL_PREFIX):
        raise NotAllowed(f"identity {reviewer.name!r} cannot review: the name is reserved")
    request = await store.get_request(request_id)
    await _authorise(store, reviewer, request)
    if request.identity == reviewer.name:
        raise NotAllowed(f"request {request_id} is your own; another reviewer must decide it")
    now = time.time()
    audit = _audit(request, reviewer, reason)
    if not approve:
        await store.deny_request(request_id, reviewer.name, reason, now, audit)
        return f"request {request_id} denied"
    outcome = await store.approve_request(request_id, reviewer.name, reason, now, audit)
    if outcome.state != "approved":
        return (
            f"request {request_id}: approval {outcome.approvals} of {outcome.needed} recorded; "
            "waiting for another reviewer"
        )
    if grant_seconds:
        await store.add_grant(request, reviewer.name, now, grant_seconds)
        return f"request {request_id} approved; the same command passes for {grant_seconds}s"
    return f"request {request_id} approved"


async def _authorise(store: Store, reviewer: Reviewer, request: RequestRecord) -> None:
    target = await store.get_target(request.target)
    labels = target.labels if target is not None else {}
    if not reviewer.may_review(request.target, labels):
        raise NotAllowed(f"{reviewer.name} has no approving role for target {request.target!r}")


def _audit(request: RequestRecord, reviewer: Reviewer, reason: str | None) -> AuditEvent:
    """The decision's audit row; the store fills in approved, approval or denied."""
    return AuditEvent(
        kind="review-decision",
        session_id=request.session_id,
        identity=reviewer.name,
        target=request.target,
        login=request.login,
        command=request.command,
        rule=request.rule,
        detail=f"request {request.id} of {request.identity}: {reason or ''}".strip(),
    )
