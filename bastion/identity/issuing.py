"""Signing an agent's key, and the record the store keeps of what was signed."""

from __future__ import annotations

import re
import time

import asyncssh

from bastion.errors import UsageError
from bastion.identity.authorities import Authorities, new_serial
from bastion.identity.certinfo import certificate_info
from bastion.store import Store
from bastion.store.records import CertificateRecord

MAX_TTL_SECONDS = 24 * 3600
MAX_PRINCIPALS = 32
_LOGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$")


async def issue_user_certificate(
    store: Store,
    authorities: Authorities,
    public_key: asyncssh.SSHKey,
    *,
    identity: str,
    principals: list[str],
    groups: list[str],
    ttl: int,
    source: str,
) -> tuple[asyncssh.SSHCertificate, CertificateRecord]:
    """Sign, then record the certificate (a certificate the store lacks is refused)."""
    cert, record = sign_user_certificate(
        authorities,
        public_key,
        identity=identity,
        principals=principals,
        groups=groups,
        ttl=ttl,
        source=source,
    )
    await store.record_certificate(record)
    return cert, record


def sign_user_certificate(
    authorities: Authorities,
    public_key: asyncssh.SSHKey,
    *,
    identity: str,
    principals: list[str],
    groups: list[str],
    ttl: int,
    source: str,
) -> tuple[asyncssh.SSHCertificate, CertificateRecord]:
    if not identity or len(identity) > 256 or not identity.isprintable():
        raise UsageError("identity must be 1-256 printable characters")
    if not principals:
        raise UsageError("give at least one --principal (a login on targets)")
    if len(principals) > MAX_PRINCIPALS:
        raise UsageError(f"at most {MAX_PRINCIPALS} principals")
    for login in principals:
        if not _LOGIN.match(login):
            raise UsageError(f"invalid principal {login!r}: expected a Unix login name")
    for group in groups:
        if not _GROUP.match(group):
            raise UsageError(f"invalid group {group!r}")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise UsageError(f"ttl must be between 1s and {MAX_TTL_SECONDS // 3600}h")
    serial = new_serial()
    cert = authorities.issue_user_certificate(
        public_key, identity=identity, principals=principals, ttl=ttl, serial=serial
    )
    signed = certificate_info(cert.export_certificate())
    record = CertificateRecord(
        serial=serial,
        identity=identity,
        principals=tuple(principals),
        groups=tuple(groups),
        key_fingerprint=public_key.get_fingerprint(),
        valid_after=float(signed.valid_after),
        valid_before=float(signed.valid_before),
        issued=time.time(),
        source=source,
        key_id=identity,
    )
    return cert, record
