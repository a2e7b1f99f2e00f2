"""Targets, certificates, revocations and token uses, seen from two nodes."""

from __future__ import annotations

import asyncio
import time

import pytest
from storetest import certificate, two_nodes

from bastion.errors import NotFound, UsageError
from bastion.targets import Target


async def test_a_target_added_on_one_node_is_seen_on_the_other(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.add_target(
            Target("web1", "10.0.0.1", 22, host_key="ssh-ed25519 AAAA", labels={"env": "prod"})
        )
        assert await b.get_target("web1") == Target(
            "web1", "10.0.0.1", 22, host_key="ssh-ed25519 AAAA", labels={"env": "prod"}
        )
        with pytest.raises(UsageError, match="already exists"):
            await b.add_target(Target("web1", "10.0.0.2", 22, host_key="ssh-ed25519 BBBB"))
        assert [t.name for t in await b.list_targets()] == ["web1"]
        await b.remove_target("web1")
        assert await a.get_target("web1") is None
        with pytest.raises(NotFound):
            await a.remove_target("web1")
        assert (await a.verify_chain()).intact


async def test_a_certificate_record_keeps_what_binding_needs(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        record = certificate(2**62 + 5)
        await a.record_certificate(record)
        assert await b.get_certificate(record.serial) == record
        assert await b.get_certificate(7) is None


async def test_revocation_on_one_node_is_seen_and_announced_on_the_other(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        for serial in (11, 12, 13):
            await a.record_certificate(certificate(serial, "bob" if serial == 13 else "alice"))
        start = await b.last_event_id()
        assert await a.revoke_serial(11, by="local:root") is True
        assert await a.revoke_serial(11) is False
        assert await b.revoked_among([11, 12, 13]) == {11}
        assert await b.revoke_identity("alice", by="local:root") == 1  # 12; 11 was already
        assert await a.revoked_among([11, 12, 13]) == {11, 12}
        assert (await a.get_certificate(12)).revoked_by == "local:root"
        assert (await a.identity_revocation("alice")).by == "local:root"
        events = await a.events_after(start)
        assert [(e.kind, e.payload["serials"]) for e in events] == [
            ("certificate.revoked", ["11"]),
            ("certificate.revoked", ["12"]),
        ]
        assert events[1].node == "node-b"
        with pytest.raises(NotFound):
            await a.revoke_serial(99)


async def test_an_identity_revocation_holds_until_lifted(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        assert await a.identity_revocation("carol") is None
        assert await a.revoke_identity("carol", by="op") == 0
        revocation = await b.identity_revocation("carol")
        assert revocation is not None and revocation.by == "op"
        assert await b.lift_identity_revocation("carol", by="op2") is True
        assert await a.identity_revocation("carol") is None
        assert await a.lift_identity_revocation("carol") is False
        await a.revoke_identity("carol")
        assert await b.identity_revocation("carol") is not None
        assert (await a.verify_chain()).intact


async def test_a_token_is_used_once_across_nodes_even_when_racing(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        expires = time.time() + 300
        results = await asyncio.gather(
            *(store.use_token_once("jti-1", "alice", expires) for store in (a, b) * 4)
        )
        assert sorted(results) == [False] * 7 + [True]
        assert await b.use_token_once("jti-2", "alice", expires) is True
        assert await a.use_token_once("jti-2", "alice", expires) is False
