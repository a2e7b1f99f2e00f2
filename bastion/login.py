"""`bastion login`: exchange an OIDC token for a short-lived certificate, and set up ssh.

The token goes to the bastion only inside an SSH connection whose host key
is verified against the bastion's host CA (`--host-ca`, or the known_hosts
file a previous login wrote), never to an unverified server.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bastion.config import parse_listen
from bastion.errors import BastionError, UsageError
from bastion.exchange import LOGIN_USER

MAX_TOKEN = 16 * 1024


@dataclass(frozen=True)
class LoginResult:
    identity: str
    principals: tuple[str, ...]
    serial: str
    out: Path
    ssh_config: Path


def read_token(token_file: Path | None, token_env: str | None) -> str:
    if (token_file is None) == (token_env is None):
        raise UsageError("give exactly one of --token-file F or --token-env VAR")
    if token_file is not None:
        try:
            if token_file.stat().st_size > MAX_TOKEN:
                raise UsageError(f"{token_file} is larger than {MAX_TOKEN} bytes")
            token = token_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get(token_env or "", "").strip()
        if not token:
            raise UsageError(f"environment variable {token_env} is empty or unset")
    if len(token) > MAX_TOKEN:
        raise UsageError(f"token larger than {MAX_TOKEN} bytes")
    return token


def login(bastion: str, token: str, out: Path, host_ca: Path | None) -> LoginResult:
    host, port = parse_listen(bastion if ":" in bastion.rsplit("]", 1)[-1] else f"{bastion}:22")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    known_hosts = out / "known_hosts"
    if host_ca is not None:
        try:
            ca_line = (
                asyncssh.import_public_key(host_ca.read_text()).export_public_key().decode().strip()
            )
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            raise UsageError(f"--host-ca {host_ca}: not a public key ({exc})") from None
        known_hosts.write_text(f"@cert-authority * {ca_line}\n")
    elif not known_hosts.is_file():
        raise UsageError(
            f"no {known_hosts}: give --host-ca with the bastion's host CA (bastion ca export host)"
        )
    key = asyncssh.generate_private_key("ssh-ed25519", comment="bastion-login")
    reply = asyncio.run(_exchange(host, port, token, key, known_hosts))
    key_path = out / "id_ed25519"
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    (out / "id_ed25519.pub").write_bytes(key.export_public_key())
    (out / "id_ed25519-cert.pub").write_text(reply["certificate"])
    known_hosts.write_text(f"@cert-authority * {reply['host_ca']}\n")
    ssh_config = out / "ssh_config"
    ssh_config.write_text(
        f"""# Written by `bastion login`; use with ssh -F {ssh_config}
Host bastion
  HostName {host}
  Port {port}
  User {reply["identity"] if reply["identity"].isidentifier() else "agent"}
  ProxyJump none

Host *
  IdentityFile {key_path}
  CertificateFile {out / "id_ed25519-cert.pub"}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {known_hosts}
  StrictHostKeyChecking yes
  ProxyJump bastion
"""
    )
    return LoginResult(
        reply["identity"], tuple(reply["principals"]), reply["serial"], out, ssh_config
    )


class _BannerClient(asyncssh.SSHClient):
    """Keeps the bastion's auth banner: it says why a token was refused."""

    def __init__(self) -> None:
        self.banners: list[str] = []

    def auth_banner_received(self, msg: str, lang: str) -> None:
        self.banners.append(msg.strip())


async def _exchange(
    host: str, port: int, token: str, key: asyncssh.SSHKey, known_hosts: Path
) -> dict:
    client = _BannerClient()
    try:
        async with asyncssh.connect(
            host,
            port,
            username=LOGIN_USER,
            password=token,
            known_hosts=str(known_hosts),
            client_factory=lambda: client,
            client_keys=None,
            agent_path=None,
            config=None,
            preferred_auth="password",
            connect_timeout=20,
        ) as conn:
            result = await conn.run(
                f"issue-certificate {key.export_public_key().decode().strip()}",
                check=False,
                timeout=30,
            )
    except asyncssh.PermissionDenied as exc:
        why = "; ".join(b.removeprefix("bastion: ") for b in client.banners) or exc.reason
        raise BastionError(f"the bastion refused the token: {why}") from None
    except asyncssh.HostKeyNotVerifiable:
        raise BastionError(f"{host}:{port} is not the bastion its host CA certifies") from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise BastionError(f"cannot reach the bastion at {host}:{port}: {exc}") from None
    if result.exit_status != 0:
        raise BastionError(
            str(result.stderr).strip().removeprefix("bastion: ") or "certificate refused"
        )
    try:
        reply = json.loads(str(result.stdout))
        reply["certificate"], reply["host_ca"], reply["identity"]
    except (ValueError, KeyError, TypeError):
        raise BastionError("the bastion's reply was not understood") from None
    return reply
