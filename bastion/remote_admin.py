"""Reviewer verbs run on a remote bastion over SSH with the reviewer's own certificate.

`bastion approve --bastion HOST:PORT 42` is `ssh -p PORT USER@HOST approve 42`
with the key, certificate and known_hosts that `bastion login` wrote (by
default in ~/.bastion). The bastion's host key is verified against its host
CA from that known_hosts file, never trusted on first use.
"""

from __future__ import annotations

import asyncio
import getpass
import shlex
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bastion.config import parse_bastion_address
from bastion.errors import BastionError, UsageError

DEFAULT_IDENTITY_DIR = Path.home() / ".bastion"
MAX_REPLY = 4 << 20


@dataclass(frozen=True)
class RemoteResult:
    stdout: str
    stderr: str
    status: int


def split_bastion(address: str) -> tuple[str, int]:
    """HOST or HOST:PORT (port 22 by default)."""
    return parse_bastion_address(address)


def run_remote(address: str, argv: list[str], identity_dir: Path | None) -> RemoteResult:
    host, port = split_bastion(address)
    folder = identity_dir or DEFAULT_IDENTITY_DIR
    key, cert, known_hosts = (
        folder / "id_ed25519",
        folder / "id_ed25519-cert.pub",
        folder / "known_hosts",
    )
    for path in (key, cert, known_hosts):
        if not path.is_file():
            raise UsageError(f"no {path}: run `bastion login` first or give --identity-dir")
    try:
        client_key = asyncssh.read_private_key(str(key))
        certificate = asyncssh.read_certificate(str(cert))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise UsageError(f"cannot read the key or certificate in {folder}: {exc}") from None
    return asyncio.run(_run(host, port, shlex.join(argv), (client_key, certificate), known_hosts))


async def _run(
    host: str,
    port: int,
    command: str,
    client_key: tuple[asyncssh.SSHKey, asyncssh.SSHCertificate],
    known_hosts: Path,
) -> RemoteResult:
    try:
        async with asyncssh.connect(
            host,
            port,
            username=getpass.getuser(),
            client_keys=[client_key],
            known_hosts=str(known_hosts),
            agent_path=None,
            config=None,
            preferred_auth="publickey",
            connect_timeout=20,
        ) as conn:
            result = await conn.run(command, check=False, timeout=60)
    except asyncssh.PermissionDenied:
        raise BastionError(
            f"{host}:{port} refused the certificate (expired or revoked? run `bastion login`)"
        ) from None
    except asyncssh.HostKeyNotVerifiable:
        raise BastionError(f"{host}:{port} is not the bastion its host CA certifies") from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise BastionError(f"cannot reach the bastion at {host}:{port}: {exc}") from None
    stdout = _text(result.stdout)
    stderr = _text(result.stderr)
    return RemoteResult(
        stdout, stderr, result.exit_status if result.exit_status is not None else 255
    )


def _text(data: object) -> str:
    text = data if isinstance(data, str) else (data or b"").decode("utf-8", "replace")  # type: ignore[union-attr]
    return text[:MAX_REPLY]
