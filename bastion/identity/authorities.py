"""The bastion's three Ed25519 certificate authorities and what each signs.

- user CA: agents' certificates (the outer connection accepts only these);
- host CA: host certificates the bastion presents, for itself and for each
  target name, so agents pin one `@cert-authority` line;
- target CA: per-session certificates the bastion logs in upstream with;
  targets trust it through TrustedUserCAKeys.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bastion.errors import BastionError, NotInitialised

CA_NAMES = ("user", "host", "target")
# Certificates start a little in the past so small clock skew does not reject them.
BACKDATE_SECONDS = 60


def _write_private(path: Path, data: bytes) -> None:
    """Create a key file 0600 without a window where it is world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def create_key_pair(path: Path, comment: str) -> bool:
    """Create `path` and `path.pub` unless the private key exists; True if created."""
    if path.exists():
        return False
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    _write_private(path, key.export_private_key())
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return True


def new_serial() -> int:
    """A random positive 63-bit serial (SQLite integers are signed 64-bit)."""
    return secrets.randbits(63) or 1


@dataclass(frozen=True)
class SessionCredentials:
    key: asyncssh.SSHKey
    certificate: asyncssh.SSHCertificate


class Authorities:
    """Loads the CA keys from `<state>/keys` and signs certificates with them."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._keys: dict[str, asyncssh.SSHKey] = {}
        for name in CA_NAMES:
            path = keys_dir / f"{name}_ca"
            if not path.is_file():
                raise NotInitialised(f"missing {path}: run `bastion init` first")
            try:
                self._keys[name] = asyncssh.read_private_key(path)
            except (OSError, asyncssh.KeyImportError) as exc:
                raise BastionError(f"cannot read CA key {path}: {exc}") from None
        self._host_certs: dict[str, tuple[float, asyncssh.SSHKey, asyncssh.SSHCertificate]] = {}
        host_key_path = keys_dir / "host_key"
        self.host_key = asyncssh.read_private_key(host_key_path)

    @staticmethod
    def initialise(keys_dir: Path) -> list[str]:
        """Create whatever CA and host keys are missing; never overwrite one."""
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = []
        for name in CA_NAMES:
            if create_key_pair(keys_dir / f"{name}_ca", f"bastion-{name}-ca"):
                created.append(f"{name}_ca")
        if create_key_pair(keys_dir / "host_key", "bastion-host-key"):
            created.append("host_key")
        return created

    def public_key_line(self, name: str) -> str:
        if name not in CA_NAMES:
            raise BastionError(f"unknown CA {name!r}: choose one of {', '.join(CA_NAMES)}")
        return self._keys[name].export_public_key().decode().strip()

    @property
    def user_ca_key_text(self) -> str:
        """`ssh-ed25519 AAAA...` without comment, to compare with a certificate's CA."""
        return " ".join(self.public_key_line("user").split(" ")[:2])

    def issue_user_certificate(
        self,
        public_key: asyncssh.SSHKey,
        *,
        identity: str,
        principals: list[str],
        ttl: int,
        serial: int,
    ) -> asyncssh.SSHCertificate:
        """Sign an agent key: key id = identity; agent/X11 forwarding not permitted."""
        now = int(time.time())
        return self._keys["user"].generate_user_certificate(
            public_key,
            identity,
            serial=serial,
            principals=principals,
            valid_after=now - BACKDATE_SECONDS,
            valid_before=now + ttl,
            permit_x11_forwarding=False,
            permit_agent_forwarding=False,
            permit_user_rc=False,
        )

    def host_certificate(self, name: str) -> tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]:
        """The host certificate presented for a target name.

        Minted in memory, valid for a day, and re-minted when it nears expiry.
        """
        return self._host_certificate(f"target:{name}", [name])

    def host_certificate_for_bastion(
        self, names: tuple[str, ...] | list[str]
    ) -> tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]:
        return self._host_certificate("bastion", list(names))

    def _host_certificate(
        self, key_id: str, principals: list[str]
    ) -> tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]:
        now = time.time()
        cached = self._host_certs.get(key_id)
        if cached and cached[0] - now > 3600:
            return cached[1], cached[2]
        valid_before = int(now) + 86400
        cert = self._keys["host"].generate_host_certificate(
            self.host_key,
            f"bastion-host:{key_id}",
            serial=new_serial(),
            principals=principals,
            valid_after=int(now) - BACKDATE_SECONDS,
            valid_before=valid_before,
        )
        self._host_certs[key_id] = (valid_before, self.host_key, cert)
        return self.host_key, cert

    def session_credentials(
        self, *, login: str, identity: str, session_id: str, ttl: int = 300
    ) -> SessionCredentials:
        """A fresh key and target-CA certificate for one upstream login.

        The key id names the agent and the session, so the target's own auth
        log says who really logged in.
        """
        now = int(time.time())
        key = asyncssh.generate_private_key("ssh-ed25519")
        cert = self._keys["target"].generate_user_certificate(
            key,
            f"bastion:{identity}:{session_id}",
            serial=new_serial(),
            principals=[login],
            valid_after=now - BACKDATE_SECONDS,
            valid_before=now + ttl,
            permit_x11_forwarding=False,
            permit_agent_forwarding=False,
            permit_port_forwarding=False,
            permit_user_rc=False,
        )
        return SessionCredentials(key=key, certificate=cert)
