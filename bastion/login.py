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

from bastion.config import parse_bastion_address
from bastion.errors import BastionError, TokenRefused, UsageError
from bastion.exchange import LOGIN_USER
from bastion.keyfiles import read_public_key

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


@dataclass(frozen=True)
class LoginPlan:
    """Where to log in and what vouches for the bastion, checked before any token is fetched."""

    host: str
    port: int
    out: Path
    known_hosts_line: str  # `@cert-authority * <host CA>`, from --host-ca or the last login


def plan_login(bastion: str, out: Path, host_ca: Path | None) -> LoginPlan:
    """Check the address and the host CA first: a browser sign-in must not be wasted."""
    host, port = parse_bastion_address(bastion)
    known_hosts = out / "known_hosts"
    if host_ca is not None:
        key = read_public_key(host_ca, "--host-ca")
        line = f"@cert-authority * {key.export_public_key().decode().strip()}"
    elif known_hosts.is_file():
        line = known_hosts.read_text().strip()
    else:
        raise UsageError(
            f"no {known_hosts}: give --host-ca with the bastion's host CA (bastion ca export host)"
        )
    return LoginPlan(host, port, out, line)


def login(plan: LoginPlan, token: str) -> LoginResult:
    out = plan.out
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror or exc}") from None
    known_hosts = out / "known_hosts"
    known_hosts.write_text(plan.known_hosts_line + "\n")
    key = asyncssh.generate_private_key("ssh-ed25519", comment="bastion-login")
    reply = asyncio.run(_exchange(plan.host, plan.port, token, key, known_hosts))
    key_path = out / "id_ed25519"
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    (out / "id_ed25519.pub").write_bytes(key.export_public_key())
    (out / "id_ed25519-cert.pub").write_text(reply["certificate"])
    known_hosts.write_text(f"@cert-authority * {reply['host_ca']}\n")
    ssh_config = out / "ssh_config"
    ssh_config.write_text(ssh_config_text(plan.host, plan.port, reply["identity"], out))
    return LoginResult(
        reply["identity"], tuple(reply["principals"]), reply["serial"], out, ssh_config
    )


def ssh_config_text(host: str, port: int, identity: str, out: Path) -> str:
    """An ssh_config that jumps through the bastion to every other host.

    The bastion is matched by its alias and by the address it was reached at,
    so `ssh -F ... LOGIN%TARGET@ADDRESS` goes to the bastion directly instead
    of being jumped through itself (the first value ssh finds for an option
    wins, so `ProxyJump none` there beats `Host *`'s).
    """
    user = identity if identity.isidentifier() else "agent"
    return f"""# Written by `bastion login`; use with ssh -F {out / "ssh_config"}
Host bastion {host}
  HostName {host}
  Port {port}
  User {user}
  ProxyJump none

Host *
  IdentityFile {out / "id_ed25519"}
  CertificateFile {out / "id_ed25519-cert.pub"}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {out / "known_hosts"}
  StrictHostKeyChecking yes
  ProxyJump bastion
"""


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
        raise TokenRefused(f"the bastion refused the token: {why}") from None
    except asyncssh.HostKeyNotVerifiable:
        raise BastionError(f"{host}:{port} is not the bastion its host CA certifies") from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise BastionError(f"cannot reach the bastion at {host}:{port}: {exc}") from None
    if result.exit_status != 0:
        raise TokenRefused(
            str(result.stderr).strip().removeprefix("bastion: ") or "certificate refused"
        )
    try:
        reply = json.loads(str(result.stdout))
        reply["certificate"], reply["host_ca"], reply["identity"]
    except (ValueError, KeyError, TypeError):
        raise BastionError("the bastion's reply was not understood") from None
    return reply
