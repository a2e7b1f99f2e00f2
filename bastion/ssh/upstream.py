"""Logging in to a target with a certificate minted for this one session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import asyncssh

from bastion import metrics
from bastion.errors import UpstreamError
from bastion.identity.authorities import Authorities
from bastion.relay.relay import TargetEnd
from bastion.relay.request import ChannelRequest
from bastion.ssh import tuning
from bastion.targets import Target

if TYPE_CHECKING:
    from bastion.relay.session import ChannelSession

# AES-GCM first: with AES-NI behind OpenSSL it costs almost nothing per byte,
# while chacha20-poly1305 runs partly in Python inside asyncssh.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
# What the agent-facing legs offer. The client picks the first of *its* list
# that the server offers, and OpenSSH lists chacha20 and CTR before GCM, so
# offering GCM alone is the only way to get it (OpenSSH has had it since 6.2).
AGENT_FACING_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


async def connect_upstream(
    authorities: Authorities,
    target: Target,
    *,
    login: str,
    identity: str,
    session_id: str,
    timeout: float,
) -> asyncssh.SSHClientConnection:
    """Open the SSH connection to `target`, verifying its host key.

    Every failure is an UpstreamError whose message is the one line the
    agent sees on stderr.
    """
    started = time.monotonic()
    try:
        conn = await _connect(authorities, target, login, identity, session_id, timeout)
    except UpstreamError as exc:
        metrics.upstream_failed(exc.reason, time.monotonic() - started)
        raise
    metrics.upstream_connected(time.monotonic() - started)
    return conn


async def _connect(
    authorities: Authorities,
    target: Target,
    login: str,
    identity: str,
    session_id: str,
    timeout: float,
) -> asyncssh.SSHClientConnection:
    creds = authorities.session_credentials(login=login, identity=identity, session_id=session_id)
    try:
        return await asyncio.wait_for(
            asyncssh.connect(
                target.host,
                target.port,
                username=login,
                client_keys=[(creds.key, creds.certificate)],
                known_hosts=target.known_hosts(),
                config=None,
                agent_path=None,
                agent_forwarding=False,
                x11_forwarding=False,
                preferred_auth="publickey",
                encryption_algs=PREFERRED_CIPHERS,
                connect_timeout=timeout,
                keepalive_interval=30,
            ),
            timeout=timeout,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise UpstreamError(
            f"host key verification failed for target {target.name}: {exc.reason}",
            reason="host-key",
        ) from None
    except asyncssh.PermissionDenied:
        raise UpstreamError(
            f"target {target.name} refused login {login!r} with the bastion's certificate",
            reason="login",
        ) from None
    except asyncssh.Error as exc:
        raise UpstreamError(
            f"SSH error from target {target.name}: {exc.reason}", reason="ssh"
        ) from None
    except (TimeoutError, OSError) as exc:
        timed_out = not (isinstance(exc, OSError) and exc.strerror)
        reason = "timed out" if timed_out else str(exc.strerror)
        raise UpstreamError(
            f"cannot reach target {target.name} ({target.host}:{target.port}): {reason}",
            reason="timeout" if timed_out else "unreachable",
        ) from None


class UpstreamConnector:
    """Opens one channel's session on its target; the relay's `Upstream`.

    `prefetch()` starts the connection early (when the inner authentication
    completes, while the agent is still sending its session requests).
    """

    def __init__(
        self,
        authorities: Authorities,
        target: Target,
        *,
        login: str,
        identity: str,
        session_id: str,
        timeout: float,
    ) -> None:
        self.session_id = session_id
        self._connect = lambda: connect_upstream(
            authorities,
            target,
            login=login,
            identity=identity,
            session_id=session_id,
            timeout=timeout,
        )
        self._target = target
        self._task: asyncio.Task[asyncssh.SSHClientConnection] | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._closed = False

    def prefetch(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._connect())
            self._task.add_done_callback(_seen)

    async def open(
        self, request: ChannelRequest, env: Mapping[str, str], session: ChannelSession
    ) -> TargetEnd:
        from bastion.ssh.channel import UpstreamChannel

        self.prefetch()
        assert self._task is not None
        conn = await self._task
        if self._closed:
            conn.close()
            raise UpstreamError("the session closed while connecting")
        self._conn = conn
        try:
            chan, _ = await conn.create_session(
                lambda: UpstreamChannel(session),
                command=request.command if request.kind == "exec" else None,
                subsystem=request.subsystem,
                env=dict(env),
                request_pty=request.pty,
                term_type=request.term_type,
                term_size=request.term_size,
                term_modes=dict(request.term_modes),
                encoding=None,
                window=tuning.UPSTREAM_WINDOW,
                max_pktsize=tuning.UPSTREAM_PACKET,
            )
        except (asyncssh.Error, OSError) as exc:
            raise UpstreamError(f"target {self._target.name} refused the session: {exc}") from None
        return chan  # type: ignore[return-value]  # an SSHClientChannel is a TargetEnd

    def close(self) -> None:
        """Close the connection, or drop it if it is still being made or was never used."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        elif task is not None and not task.cancelled() and task.exception() is None:
            task.result().close()
        if self._conn is not None:
            self._conn.close()


def _seen(task: asyncio.Task[asyncssh.SSHClientConnection]) -> None:
    """Mark a prefetch failure as retrieved; the session that awaits it reports it."""
    if not task.cancelled():
        task.exception()
