"""Registered targets: where the bastion may relay, and how it verifies them.

A target is reached only by its registered name. Its upstream host key is
always verified, either against a pinned key or against a host CA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import asyncssh

from bastion.errors import UsageError
from bastion.keyfiles import public_key_from_text

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._/-]{0,63}$")
MAX_LABELS = 32


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    host_key: str | None = None
    host_ca: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def known_hosts(self) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list]:
        """asyncssh's (trusted host keys, trusted CA keys, revoked) triple."""
        keys = [asyncssh.import_public_key(self.host_key)] if self.host_key else []
        cas = [asyncssh.import_public_key(self.host_ca)] if self.host_ca else []
        return keys, cas, []

    @property
    def verification(self) -> str:
        if self.host_key:
            return "key " + asyncssh.import_public_key(self.host_key).get_fingerprint()
        return "ca " + asyncssh.import_public_key(self.host_ca or "").get_fingerprint()


def validate_target_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"invalid target name {name!r}: use letters, digits, '.', '_' or '-' (max 63)"
        )
    return name


def validate_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise UsageError(f"invalid port {port}: must be 1-65535")
    return port


def parse_labels(items: list[str]) -> dict[str, str]:
    """`k=v` strings to a dict; each malformed item is a one-line error."""
    if len(items) > MAX_LABELS:
        raise UsageError(f"too many labels ({len(items)}): at most {MAX_LABELS}")
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise UsageError(f"invalid label {item!r}: expected key=value")
        labels[key] = value
    return labels


def normalise_public_key(text: str, what: str) -> str:
    """Parse an OpenSSH public key line (first key only) and return it canonical."""
    text = text.strip()
    if len(text) > 16384:
        raise UsageError(f"{what} is too large to be a public key")
    key = public_key_from_text(text, what)
    return key.export_public_key().decode().strip()
