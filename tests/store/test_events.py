"""The ordered event feed: written with the change, seen by every node, never lost."""

from __future__ import annotations

import asyncio
import time

from storetest import certificate, two_nodes

from bastion.store import Store
from bastion.store.records import Event, NewRequest


async def next_event(events, timeout: float = 5.0) -> Event:
    return await asyncio.wait_for(events.__anext__(), timeout)


async def test_a_decision_on_one_node_reaches_a_subscriber_on_the_other_within_a_second(
    store_url: str,
) -> None:
    async with two_nodes(store_url) as (a, b):
        events = b.subscribe()
        first = asyncio.ensure_future(next_event(events))
        await asyncio.sleep(0.3)  # the subscriber is waiting (and listening, on PostgreSQL)
        now = time.time()
        request = await a.create_request(
            NewRequest("ci", "web1", "deploy", "uname", None, None, now, now + 60)
        )
        created = await first
        started = time.monotonic()
        await a.approve_request(request.id, "alice", None, time.time())
        decided = await next_event(events)
        latency = time.monotonic() - started
        assert (created.kind, created.ref) == ("request.created", str(request.id))
        assert (decided.kind, decided.ref, decided.payload) == (
            "request.decided", str(request.id), {"state": "approved"},
        )  # fmt: skip
        assert decided.id > created.id and decided.node == "node-a"
        assert latency < 1.0, latency
        await events.aclose()


async def test_events_come_in_commit_order_from_concurrent_writers(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        start = await a.last_event_id()

        async def publish(store: Store, n: int) -> None:
            for i in range(20):
                await store.publish("test.event", f"{n}-{i}")

        seen: list[Event] = []

        async def follow() -> None:
            async for event in b.subscribe(after=start):
                seen.append(event)
                if len(seen) == 80:
                    return

        follower = asyncio.ensure_future(follow())
        await asyncio.gather(*(publish(s, n) for n, s in enumerate((a, b, a, b))))
        await asyncio.wait_for(follower, 10)
        assert [e.id for e in seen] == list(range(start + 1, start + 81))  # none skipped


async def test_an_event_written_while_the_listener_reconnects_is_not_lost(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.record_certificate(certificate(5))
        events = b.subscribe()
        waiting = asyncio.ensure_future(next_event(events, 10))
        await asyncio.sleep(0.3)
        pid = getattr(b, "listener_pid", None)
        if pid is not None:  # PostgreSQL: cut b's LISTEN connection, then write at once
            async with a.transaction() as tx:
                await tx.execute("SELECT pg_terminate_backend(?)", (pid,))
        await a.revoke_serial(5)
        event = await waiting
        assert (event.kind, event.payload["serials"]) == ("certificate.revoked", ["5"])
        if pid is not None:
            await asyncio.wait_for(b.listening.wait(), 10)
            assert b.listener_pid != pid  # it did reconnect
        await events.aclose()
