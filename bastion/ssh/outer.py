"""The agent-facing SSH server: who is this, and where may it go?

Two ways in, both with a user certificate from the bastion's user CA:

- jump: `ssh -J agent@bastion LOGIN@TARGET`. The outer user name is free
  (conventionally the agent's name); the certificate must carry at least one
  principal, and the inner login is checked against them (inner.py).
- direct: `ssh -p 2222 LOGIN%TARGET@bastion [cmd]`, for clients that cannot
  jump. The certificate's principals must include LOGIN.

A session on the bastion itself runs the reviewer verbs (ssh/admin.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import asyncssh

from bastion import logs, metrics
from bastion.audit import AuditEntry
from bastion.context import Bastion
from bastion.exchange import LOGIN_USER
from bastion.identity.certinfo import CertificateInfo
from bastion.identity.model import Identity
from bastion.identity.oidc import TokenRejected, VerifiedToken
from bastion.identity.resolver import IdentityRefused
from bastion.ssh.admin import AdminSession
from bastion.ssh.channel import relayed_channel
from bastion.ssh.connection import BastionServerConnection
from bastion.ssh.inner import inner_connection

log = logging.getLogger("bastion.outer")

_LOGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
INNER_SSH_PORT = 22
# An agent multiplexing through one outer connection rarely needs more.
MAX_INNER_CONNECTIONS = 16


class OuterServer(asyncssh.SSHServer):
    def __init__(self, bastion: Bastion) -> None:
        self.bastion = bastion
        self._conn: BastionServerConnection | None = None
        self.peer: str | None = None
        self.username = ""
        self.direct: tuple[str, str] | None = None  # (login, target) for LOGIN%TARGET
        self.identity: Identity | None = None
        self.inner_connections = 0
        self.token_login = False
        self.verified: VerifiedToken | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        assert isinstance(conn, BastionServerConnection)
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else None
        conn.pre_check = self._pre_check
        conn.certificate_check = self._certificate_check

    # --- authentication ----------------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        assert self._conn is not None
        self.username = username
        if username == LOGIN_USER:
            self.token_login = True  # password auth only, and the password is an OIDC token
            return True
        ca = self.bastion.authorities.public_key_line("user")
        if "%" in username:
            login, _, target = username.partition("%")
            if not _LOGIN.match(login) or not _TARGET.match(target):
                self._conn.send_auth_banner(f"bastion: malformed user name {username[:80]!r}\r\n")
                return True  # no keys trusted: authentication fails
            self.direct = (login, target)
            self._conn.set_authorized_keys(
                asyncssh.import_authorized_keys(f'cert-authority,principals="{login}" {ca}\n')
            )
        else:
            self._conn.set_authorized_keys(
                asyncssh.import_authorized_keys(f'cert-authority,principals="*" {ca}\n')
            )
        return True

    def public_key_auth_supported(self) -> bool:
        return not self.token_login

    def password_auth_supported(self) -> bool:
        return self.token_login

    async def validate_password(self, username: str, password: str) -> bool:
        if not self.token_login or username != LOGIN_USER or self.bastion.exchange is None:
            return False
        try:
            self.verified = await asyncio.to_thread(self.bastion.exchange.verify, password)
        except TokenRejected as exc:
            assert self._conn is not None
            self._conn.send_auth_banner(f"bastion: token rejected: {exc}\r\n")
            self.bastion.audit.note(
                AuditEntry(kind="refused", identity=LOGIN_USER, detail=f"token rejected: {exc}")
            )
            return False
        log.info("token login for %s from %s", self.verified.identity, self.peer)
        return True

    def _pre_check(self, username: str, info: CertificateInfo | None) -> str | None:
        """Tell the client, in one line, why its key cannot work here."""
        if info is None:
            return "only certificates from the bastion's user CA are accepted"
        if info.cert_type != "user":
            return "a host certificate cannot log in"
        if info.ca_public_key != self.bastion.authorities.user_ca_key_text:
            return "certificate is not signed by this bastion's user CA"
        now = time.time()
        if now >= info.valid_before:
            return f"certificate expired at {_utc(info.valid_before)}"
        if now < info.valid_after:
            return f"certificate not valid before {_utc(info.valid_after)}"
        if self.direct and self.direct[0] not in info.principals:
            return f"login {self.direct[0]!r} is not a principal of your certificate"
        if not info.principals:
            return "certificate has no principals"
        return None

    async def _certificate_check(self, username: str, info: CertificateInfo) -> bool:
        try:
            self.identity = await self.bastion.identities.identity_for(info)
        except IdentityRefused as exc:
            assert self._conn is not None
            self._conn.send_auth_banner(f"bastion: {exc}\r\n")
            self.bastion.audit.note(
                AuditEntry(kind="refused", identity=info.key_id, detail=str(exc))
            )
            metrics.connection_refused("certificate")
            return False
        over = self._over_connection_limit(self.identity.name)
        if over is not None:
            assert self._conn is not None
            self._conn.send_auth_banner(f"bastion: {over}\r\n")
            self.bastion.audit.note(AuditEntry(kind="refused", identity=info.key_id, detail=over))
            metrics.connection_refused("per-identity-limit")
            self.identity = None
            return False
        self.bastion.connections.authenticated(self._conn, self.identity)
        log.info(
            "%s authenticated as %s (serial %s) from %s",
            username,
            info.key_id,
            info.serial,
            self.peer,
            extra=logs.fields("agent.authenticated", info.key_id, peer=self.peer),
        )
        return True

    def _over_connection_limit(self, name: str) -> str | None:
        """Why one more connection of `name` is refused, if it is (`[server]
        max_connections_per_identity`): one agent must not exhaust the bastion."""
        cap = self.bastion.config.server.max_connections_per_identity
        held = self.bastion.connections.count_for(name)
        if held < cap:
            return None
        return f"too many connections for {name} ({held} open, at most {cap}); close some first"

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self.bastion.connections.closed(self._conn)

    # --- jump: direct-tcpip to a registered target -------------------------------

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        identity = self._identity()
        if identity.may_forward(dest_host, dest_port):
            self.bastion.audit.note(
                AuditEntry(
                    kind="forward",
                    identity=identity.name,
                    target=f"{dest_host}:{dest_port}",
                    decision="allow",
                    detail="port forward opened by a role",
                )
            )
            return True  # asyncssh connects to the destination and relays the bytes
        return self._open_target(dest_host, dest_port)

    async def _open_target(self, dest_host: str, dest_port: int) -> BastionServerConnection:
        identity = self._identity()
        target = await self.bastion.targets.get(dest_host) if _TARGET.match(dest_host) else None
        if target is None:
            self._refuse(
                identity,
                dest_host,
                f"unknown target {dest_host!r} (port {dest_port})",
                forward=True,
            )
        if dest_port != INNER_SSH_PORT:
            self._refuse(
                identity,
                dest_host,
                f"forwarding to {dest_host}:{dest_port} is not allowed",
                forward=True,
            )
        assert target is not None
        if not identity.may_reach(target.name, target.labels):
            self._refuse(identity, dest_host, f"target {dest_host!r} is not allowed for your roles")
        if self.inner_connections >= MAX_INNER_CONNECTIONS:
            self._refuse(
                identity,
                dest_host,
                f"too many connections through this session (max {MAX_INNER_CONNECTIONS})",
            )
        self.inner_connections += 1
        return await inner_connection(
            self.bastion, identity, target, self.peer, on_close=self._inner_closed
        )

    def _inner_closed(self) -> None:
        self.inner_connections -= 1

    def _refuse(
        self, identity: Identity, target: str, reason: str, *, forward: bool = False
    ) -> None:
        self.bastion.audit.note(
            AuditEntry(kind="refused", identity=identity.name, target=target, detail=reason)
        )
        if forward:
            for alert in self.bastion.alerts.detector.forward_refused(
                identity.name, target, reason
            ):
                self.bastion.alerts.raise_alert(alert)
        raise asyncssh.ChannelOpenError(
            asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, f"bastion: {reason}"
        )

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        name = self._identity().name
        reason = f"remote forwarding of {listen_host}:{listen_port}"
        self.bastion.audit.note(AuditEntry(kind="refused", identity=name, detail=reason))
        for alert in self.bastion.alerts.detector.forward_refused(
            name, f"{listen_host}:{listen_port}", reason
        ):
            self.bastion.alerts.raise_alert(alert)
        return False

    # --- direct: LOGIN%TARGET sessions -------------------------------------------

    def session_requested(self):
        assert self._conn is not None
        chan = self._conn.create_server_channel(encoding=None)
        if self.verified is not None:
            return chan, ExchangeSession(self.bastion, self.verified, self.peer)
        if self.direct is None:
            return chan, AdminSession(self.bastion, self._identity(), self.peer)
        return chan, self._direct_session(chan, *self.direct)

    async def _direct_session(
        self, chan: asyncssh.SSHServerChannel[bytes], login: str, target_name: str
    ) -> asyncssh.SSHServerSession[bytes]:
        identity = self._identity()
        target = await self.bastion.targets.get(target_name)
        if target is not None and not identity.may_login(target.name, target.labels, login):
            self.bastion.audit.note(
                AuditEntry(
                    kind="refused",
                    identity=identity.name,
                    target=target_name,
                    login=login,
                    detail="target or login not allowed for the identity's roles",
                )
            )
            return MessageSession(
                f"bastion: {login}@{target_name} is not allowed for your roles\r\n", 255
            )
        if target is None:
            self.bastion.audit.note(
                AuditEntry(
                    kind="refused",
                    identity=identity.name,
                    target=target_name,
                    login=login,
                    detail=f"unknown target {target_name!r}",
                )
            )
            return MessageSession(f"bastion: unknown target {target_name!r}\r\n", 255)
        assert self._conn is not None
        return relayed_channel(self._conn, chan, self.bastion, identity, target, login, self.peer)

    def _identity(self) -> Identity:
        if self.identity is None:  # cannot happen after auth; fail closed anyway
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "bastion: not authenticated"
            )
        return self.identity


class ExchangeSession(asyncssh.SSHServerSession[bytes]):
    """The only thing a token login may do: `issue-certificate <public key>`."""

    def __init__(self, bastion: Bastion, verified: VerifiedToken, peer: str | None) -> None:
        self.bastion = bastion
        self.verified = verified
        self.peer = peer
        self.command = ""
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def exec_requested(self, command: str) -> bool:
        self.command = command
        return True

    def session_started(self) -> None:
        asyncio.ensure_future(self._answer())

    async def _answer(self) -> None:
        assert self._chan is not None and self.bastion.exchange is not None
        verb, _, key_line = self.command.partition(" ")
        exchange = self.bastion.exchange
        try:
            if verb != "issue-certificate" or not key_line:
                raise TokenRejected("the only command here is `issue-certificate <public key>`")
            reply = await exchange.issue(self.bastion.store, self.verified, key_line)
        except TokenRejected as exc:
            self.bastion.audit.note(
                AuditEntry(kind="refused", identity=self.verified.identity, detail=str(exc))
            )
            self._chan.write_stderr(f"bastion: {exc}\n".encode())
            self._chan.exit(1)
            return
        except Exception as exc:  # fail closed
            log.exception("certificate exchange failed")
            self._chan.write_stderr(f"bastion: internal error ({type(exc).__name__})\n".encode())
            self._chan.exit(1)
            return
        self.bastion.audit.note(
            AuditEntry(
                kind="certificate",
                identity=self.verified.identity,
                detail=f"serial {reply['serial']} for {', '.join(reply['principals'])} from {self.peer}",
            )
        )
        self._chan.write(json.dumps(reply).encode() + b"\n")
        self._chan.exit(0)


class MessageSession(asyncssh.SSHServerSession[bytes]):
    """A session that only tells the agent something on stderr and exits."""

    def __init__(self, message: str, status: int) -> None:
        self.message = message
        self.status = status
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(self, *args: object) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def session_started(self) -> None:
        assert self._chan is not None
        self._chan.write_stderr(self.message.encode())
        self._chan.exit(self.status)


def _utc(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(min(timestamp, 253402300799)))
