"""Turning a verified user certificate into an Identity, or refusing it.

asyncssh has already checked the CA signature, the validity window and the
login principal. What it cannot know is whether this bastion signed *this*
certificate: the user CA key could sign anything (a leaked key, a test
CA). So the certificate must match, field for field, the record made when
the bastion signed it: serial, certified key, key id, principals and
validity. A serial alone binds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bastion.identity.certinfo import CertificateInfo
from bastion.identity.model import Identity
from bastion.identity.roles import Role, grants_for
from bastion.store import Store
from bastion.store.records import CertificateRecord


class IdentityRefused(Exception):
    """The certificate was valid cryptographically but must not be let in."""


def mismatch(cert: CertificateInfo, record: CertificateRecord, now: float) -> str | None:
    """Why `cert` is not the certificate `record` describes, or None if it is."""
    if record.revoked is not None:
        return f"certificate serial {cert.serial} is revoked"
    if now >= record.valid_before:
        return f"certificate serial {cert.serial} has expired"
    checks = (
        ("key", cert.key_fingerprint, record.key_fingerprint),
        ("key id", cert.key_id, record.key_id or record.identity),
        ("principals", tuple(sorted(cert.principals)), tuple(sorted(record.principals))),
        (
            "validity",
            (cert.valid_after, cert.valid_before),
            (int(record.valid_after), int(record.valid_before)),
        ),
    )
    for what, presented, recorded in checks:
        if presented != recorded:
            return (
                f"certificate serial {cert.serial} does not match the one issued ({what} differs)"
            )
    return None


class IdentityResolver:
    def __init__(self, store: Store, roles: Sequence[Role], *, roles_enforced: bool) -> None:
        self._store = store
        self._roles = tuple(roles)
        self._roles_enforced = roles_enforced

    async def identity_for(self, cert: CertificateInfo) -> Identity:
        serial = cert.serial
        record = await self._store.get_certificate(serial)
        if record is None:
            raise IdentityRefused(f"certificate serial {serial} is unknown to this bastion")
        reason = mismatch(cert, record, time.time())
        if reason is not None:
            raise IdentityRefused(reason)
        grants = None
        if self._roles_enforced:
            issuer = record.source.split(":", 1)[1] if record.source.startswith("oidc:") else None
            grants = grants_for(self._roles, {"sub": cert.key_id}, record.groups, issuer)
            if not grants.any:
                raise IdentityRefused(f"no role grants {cert.key_id!r} access")
        return Identity(
            name=cert.key_id,
            principals=tuple(cert.principals),
            groups=record.groups,
            serial=serial,
            valid_before=float(min(record.valid_before, cert.valid_before)),
            grants=grants,
        )
