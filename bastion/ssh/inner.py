"""The per-target SSH server the bastion runs in process on a direct-tcpip channel.

`ssh -J bastion LOGIN@TARGET` opens a direct-tcpip channel to TARGET:22 on
the outer connection and then speaks SSH through it. The bastion answers
that SSH itself: it presents a host certificate for TARGET signed by its
host CA and asks for no second authentication, because the outer
connection already proved the agent's identity with its certificate. The
only check here is that LOGIN is one of that certificate's principals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncssh

from bastion.audit import AuditEntry
from bastion.context import Bastion
from bastion.identity.model import Identity
from bastion.ssh.channel import AgentChannel, relayed_channel, upstream_for
from bastion.ssh.connection import BastionServerConnection
from bastion.ssh.upstream import AGENT_FACING_CIPHERS, UpstreamConnector
from bastion.targets import Target

log = logging.getLogger("bastion.inner")


class InnerServer(asyncssh.SSHServer):
    def __init__(
        self,
        bastion: Bastion,
        identity: Identity,
        target: Target,
        peer: str | None,
        on_close: Callable[[], None] | None = None,
    ):
        self.bastion = bastion
        self._on_close = on_close
        self.identity = identity
        self.target = target
        self.peer = peer
        self.login: str | None = None
        self._conn: BastionServerConnection | None = None
        self._prefetch: UpstreamConnector | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        assert isinstance(conn, BastionServerConnection)
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        if self.identity.may_login(self.target.name, self.target.labels, username):
            self.login = username
            return False  # the outer certificate already authenticated this agent
        assert self._conn is not None
        if not self.identity.may_login_as(username):
            reason = (
                f"login {username!r} is not a principal of your certificate "
                f"(allowed: {', '.join(self.identity.principals) or 'none'})"
            )
        else:
            reason = f"login {username!r} on {self.target.name} is not allowed for your roles"
        self._conn.send_auth_banner(f"bastion: {reason}\r\n")
        self.bastion.audit.note(
            AuditEntry(
                kind="refused",
                identity=self.identity.name,
                target=self.target.name,
                login=username,
                detail=reason,
            )
        )
        return True  # and no method will succeed

    def public_key_auth_supported(self) -> bool:
        return False

    def auth_completed(self) -> None:
        # Start the upstream handshake now, while the client sends its session requests.
        assert self.login is not None
        self._prefetch = upstream_for(self.bastion, self.identity, self.target, self.login)
        self._prefetch.prefetch()

    def session_requested(self) -> tuple[asyncssh.SSHServerChannel[bytes], AgentChannel]:
        assert self._conn is not None and self.login is not None
        upstream, self._prefetch = self._prefetch, None
        if upstream is None:
            upstream = upstream_for(self.bastion, self.identity, self.target, self.login)
        chan = self._conn.create_server_channel(encoding=None)
        return chan, relayed_channel(
            self._conn,
            chan,
            self.bastion,
            self.identity,
            self.target,
            self.login,
            self.peer,
            upstream,
        )

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        self.bastion.audit.note(
            AuditEntry(
                kind="refused",
                identity=self.identity.name,
                target=self.target.name,
                login=self.login,
                detail=f"port forwarding to {dest_host}:{dest_port}",
            )
        )
        raise asyncssh.ChannelOpenError(
            asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
            f"bastion: port forwarding to {dest_host}:{dest_port} is not allowed",
        )

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self.bastion.audit.note(
            AuditEntry(
                kind="refused",
                identity=self.identity.name,
                target=self.target.name,
                login=self.login,
                detail=f"remote forwarding of {listen_host}:{listen_port}",
            )
        )
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        if self._prefetch is not None:
            self._prefetch.close()  # prefetched, never used
            self._prefetch = None


async def inner_connection(
    bastion: Bastion,
    identity: Identity,
    target: Target,
    peer: str | None,
    *,
    on_close: Callable[[], None] | None = None,
) -> BastionServerConnection:
    """Build the SSH server connection that will run on the direct-tcpip channel."""
    key, cert = bastion.authorities.host_certificate(target.name)
    options = await asyncssh.SSHServerConnectionOptions.construct(
        server_factory=lambda: InnerServer(bastion, identity, target, peer, on_close),
        server_host_keys=[(key, cert)],
        encryption_algs=AGENT_FACING_CIPHERS,
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
        keepalive_interval=0,
        login_timeout=30,
    )
    return BastionServerConnection(asyncio.get_running_loop(), options)
