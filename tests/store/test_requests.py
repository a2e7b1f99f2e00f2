"""Held requests across two nodes: one outcome per race, each expiry audited once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from storetest import two_nodes

from bastion.errors import NotFound
from bastion.store import RequestClosed, Store, TooManyPending
from bastion.store.records import AuditEvent, NewRequest


def held(command: str = "uname -s", *, timeout: float = 60, needed: int = 1) -> NewRequest:
    now = time.time()
    return NewRequest(
        "ci-agent", "web1", "deploy", command, "hold-uname", "sess1", now, now + timeout, needed
    )


def decision(kind: str = "review-decision") -> AuditEvent:
    return AuditEvent(kind=kind, identity="reviewer", target="web1")


async def test_a_request_created_on_one_node_is_approved_on_the_other(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        request = await a.create_request(held(), audit=AuditEvent(kind="review", decision="review"))
        assert request.state == "pending" and request.node == "node-a"
        assert [r.id for r in await b.list_requests()] == [request.id]
        outcome = await b.approve_request(request.id, "alice", "ok", time.time(), decision())
        assert (outcome.state, outcome.approvals, outcome.needed) == ("approved", 1, 1)
        state = await a.request_state(request.id)
        assert (state.state, state.reviewer, state.reason) == ("approved", "alice", "ok")
        audit = await a.list_audit()
        assert [(r.kind, r.decision, r.detail) for r in audit] == [
            ("review", "review", f"request {request.id}"),
            ("review-decision", "approved", None),
        ]
        with pytest.raises(RequestClosed, match="already approved"):
            await a.deny_request(request.id, "bob", None, time.time())
        with pytest.raises(NotFound):
            await a.request_state(request.id + 100)


async def test_two_approvers_and_a_grant(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        request = await a.create_request(held(needed=2))
        first = await a.approve_request(request.id, "alice", "one", time.time())
        assert first.state == "pending"
        with pytest.raises(RequestClosed, match="already approved it"):
            await b.approve_request(request.id, "alice", None, time.time())
        second = await b.approve_request(request.id, "bob", "two", time.time())
        assert second.state == "approved"
        record = await a.get_request(request.id)
        assert [x.reviewer for x in record.approvals] == ["alice", "bob"]
        assert record.reviewer == "alice, bob" and record.reason == "one; two"
        now = time.time()
        await a.add_grant(record, "bob", now, 60)
        grant = await b.active_grant(
            identity="ci-agent", target="web1", login="deploy", command="uname -s", now=now
        )
        assert grant is not None and grant.granted_by == "bob" and grant.request_id == request.id
        assert (
            await b.active_grant(
                identity="ci-agent", target="web1", login="deploy", command="uname -a", now=now
            )
            is None
        )


async def racer(store: Store, request_id: int, approve: bool) -> str:
    try:
        if approve:
            await store.approve_request(request_id, "alice", None, time.time(), decision())
            return "approved"
        await store.deny_request(request_id, "bob", "no", time.time(), decision())
        return "denied"
    except RequestClosed:
        return "lost"


async def test_racing_approve_and_deny_on_two_nodes_give_exactly_one_outcome(
    store_url: str,
) -> None:
    async with two_nodes(store_url) as (a, b):
        for _ in range(10):
            request = await a.create_request(held())
            results = await asyncio.gather(
                racer(a, request.id, True), racer(b, request.id, False),
                racer(b, request.id, True), racer(a, request.id, False),
            )  # fmt: skip
            winners = [r for r in results if r != "lost"]
            assert len(winners) == 1, results
            assert (await b.request_state(request.id)).state == winners[0]
        decisions = [r for r in await a.list_audit(limit=100) if r.kind == "review-decision"]
        assert len(decisions) == 10  # the losers wrote nothing


async def test_an_expiry_sweep_on_two_nodes_audits_each_expiry_once(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        overdue = [await a.create_request(held(timeout=-1)) for _ in range(5)]
        abandoned = await a.create_request(held())
        alive = await a.create_request(held())
        now = time.time()
        await a.heartbeat_request(alive.id, now + 100)
        swept = await asyncio.gather(
            *(store.expire_requests(now, now + 50) for store in (a, b, a, b))
        )
        expired = sorted(e.id for sweep in swept for e in sweep)
        assert expired == sorted([r.id for r in overdue] + [abandoned.id])
        reasons = {e.id: e.reason for sweep in swept for e in sweep}
        assert reasons[abandoned.id] == "the held session is gone"
        assert reasons[overdue[0].id] == "no review in time"
        audited = [r.detail for r in await b.list_audit() if r.kind == "review-expired"]
        assert sorted(audited) == sorted(f"request {i}: {reasons[i]}" for i in expired)
        assert (await b.request_state(alive.id)).state == "pending"


async def test_finishing_a_decided_request_does_nothing(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        request = await a.create_request(held())
        await b.deny_request(request.id, "bob", "no", time.time())
        cancel = AuditEvent(kind="review-cancelled", detail="x")
        assert await a.finish_request(request.id, "cancelled", reason="gone", audit=cancel) is False
        assert [r.kind for r in await a.list_audit()] == []
        other = await a.create_request(held())
        assert await a.finish_request(other.id, "cancelled", reason="gone", audit=cancel) is True
        assert [r.kind for r in await b.list_audit()] == ["review-cancelled"]


async def test_pending_requests_per_identity_are_capped_across_nodes(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        attempts = await asyncio.gather(
            *(
                store.create_request(held(f"cmd {i}"), max_pending=5)
                for i, store in enumerate((a, b) * 6)
            ),
            return_exceptions=True,
        )
        made = [r for r in attempts if not isinstance(r, BaseException)]
        refused = [r for r in attempts if isinstance(r, TooManyPending)]
        assert (len(made), len(refused)) == (5, 7), attempts  # no race lets a sixth in
        assert str(refused[0]) == "5 requests of 'ci-agent' are pending review (at most 5)"
        assert len(await b.list_requests()) == 5
        # Another identity has its own five; a decided or overdue request frees a place.
        other = replace(held(), identity="other-agent")
        assert (await b.create_request(other, max_pending=5)).identity == "other-agent"
        await b.deny_request(made[0].id, "bob", "no", time.time())
        assert (await a.create_request(held("after a denial"), max_pending=5)).state == "pending"
        with pytest.raises(TooManyPending):
            await a.create_request(held("one too many"), max_pending=5)
        overdue = await b.create_request(held("late", timeout=-1))  # no cap asked: made
        assert overdue.state == "pending"
        with pytest.raises(TooManyPending):
            await b.create_request(held("still too many"), max_pending=5)
        await b.deny_request(made[1].id, "bob", "no", time.time())
        await a.create_request(held("overdue ones do not count"), max_pending=5)


async def test_a_request_keeps_why_it_was_held(store_url: str) -> None:
    """The verdict's explanation goes with the request (`bastion requests show` names the
    word not understood and why); a request without one reads back as None."""
    async with two_nodes(store_url) as (a, b):
        now = time.time()
        explained = NewRequest(
            "ci-agent", "web1", "deploy", "frobnicate", "not-understood", "sess1", now,
            now + 60, explanation="not understood: frobnicate: not a program the bastion knows",
        )  # fmt: skip
        first = await a.create_request(explained)
        second = await a.create_request(held())
        assert (await b.get_request(first.id)).explanation == explained.explanation
        assert (await b.get_request(second.id)).explanation is None
