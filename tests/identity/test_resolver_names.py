"""A certificate whose key id is a look-alike gets no identity, even if it was recorded."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from storetest import certificate

from bastion.identity.certinfo import CertificateInfo
from bastion.identity.resolver import IdentityRefused, IdentityResolver
from bastion.store import CertificateRecord, open_store


def presented(record: CertificateRecord) -> CertificateInfo:
    """What the agent's certificate says: exactly what was recorded."""
    return CertificateInfo(
        key_id=record.key_id or record.identity,
        serial=record.serial,
        principals=record.principals,
        valid_after=int(record.valid_after),
        valid_before=int(record.valid_before),
        ca_public_key="ssh-ed25519 AAAA",
        cert_type="user",
        key_fingerprint=record.key_fingerprint,
    )


async def resolve(tmp_path: Path, identity: str) -> str:
    store = open_store(f"sqlite://{tmp_path / 'bastion.db'}", node="n", create=True)
    async with store:
        record = certificate(41, identity=identity)
        await store.record_certificate(record)
        resolver = IdentityResolver(store, (), roles_enforced=False)
        return (await resolver.identity_for(presented(record))).name


def test_a_recorded_canonical_identity_resolves(tmp_path: Path) -> None:
    assert asyncio.run(resolve(tmp_path, "alice@example.com")) == "alice@example.com"


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        ("\u0430lice@example.com", "mixes scripts (Cyrillic, Latin)"),
        ("ａｌｉｃｅ@example.com", "not in Unicode normal form NFKC"),
    ],
)
def test_a_recorded_look_alike_is_refused(tmp_path: Path, identity: str, reason: str) -> None:
    with pytest.raises(IdentityRefused, match=re.escape(reason)):
        asyncio.run(resolve(tmp_path, identity))
