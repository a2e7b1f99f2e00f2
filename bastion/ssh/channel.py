"""The channel adapters: asyncssh's session callbacks on one side, the relay on the other.

These are the only asyncssh session subclasses for relayed channels. They
translate, and decide nothing: AgentChannel gathers the agent's requests
into a ChannelRequest and hands every later callback to the relay;
UpstreamChannel does the same for the target's side. Callbacks, not
streams, so each chunk costs one call per hop.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncssh

from bastion.context import Bastion
from bastion.identity.model import Identity
from bastion.ids import new_session_id
from bastion.relay.events import Stream
from bastion.relay.request import ChannelRequest
from bastion.relay.session import ChannelSession
from bastion.ssh import tuning
from bastion.ssh.connection import BastionServerConnection
from bastion.ssh.upstream import UpstreamConnector
from bastion.targets import Target


def upstream_for(
    bastion: Bastion, identity: Identity, target: Target, login: str
) -> UpstreamConnector:
    """The upstream of a new session on `target` as `login`, with a fresh session id."""
    return UpstreamConnector(
        bastion.authorities,
        target,
        login=login,
        identity=identity.name,
        session_id=new_session_id(),
        timeout=bastion.config.server.upstream_timeout,
    )


def relayed_channel(
    conn: BastionServerConnection,
    chan: asyncssh.SSHServerChannel[bytes],
    bastion: Bastion,
    identity: Identity,
    target: Target,
    login: str,
    peer: str | None,
    upstream: UpstreamConnector | None = None,
) -> AgentChannel:
    """The adapter and session for one agent channel relayed to `target`."""
    upstream = upstream or upstream_for(bastion, identity, target, login)
    session = ChannelSession(
        bastion,
        chan,
        identity=identity,
        target=target,
        login=login,
        session_id=upstream.session_id,
        peer=peer,
        notices=conn.refused_requests,
        upstream=upstream,
    )
    return AgentChannel(session)


class AgentChannel(asyncssh.SSHServerSession[bytes]):
    """The agent's session channel."""

    def __init__(self, session: ChannelSession) -> None:
        self.session = session
        self.relay = session.relay
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._kind = "shell"
        self._command: str | None = None
        self._subsystem: str | None = None
        self._term: tuple[str, tuple[int, int, int, int], tuple[tuple[int, int], ...]] | None = None

    # --- what the agent asks for, before the session starts ---------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan
        tuning.fit_inner_packets(chan)

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Mapping[int, int]
    ) -> bool:
        self._term = (term_type, term_size, tuple(term_modes.items()))
        return True

    def shell_requested(self) -> bool:
        self._kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self._kind, self._command = "exec", command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            return False
        self._kind, self._subsystem = "subsystem", subsystem
        return True

    def session_started(self) -> None:
        assert self._chan is not None
        env = self._chan.get_environment() or {}
        term_type, term_size, term_modes = self._term if self._term else (None, None, ())
        self.session.start(
            ChannelRequest(
                kind=self._kind,
                command=self._command,
                subsystem=self._subsystem,
                term_type=term_type,
                term_size=term_size,
                term_modes=term_modes,
                env=tuple((_text(k), _text(v)) for k, v in env.items()),
            )
        )

    # --- after it started: everything goes to the relay -----------------------------

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.relay.from_agent(data)

    def eof_received(self) -> bool:
        self.relay.agent_eof()
        return True  # stay half-open until the target finishes

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.relay.resize(width, height, pixwidth, pixheight)

    def signal_received(self, signal: str) -> None:
        self.relay.signal(signal)

    def break_received(self, msec: int) -> bool:
        return self.relay.send_break(msec)

    def pause_writing(self) -> None:
        self.relay.agent_full()

    def resume_writing(self) -> None:
        self.relay.agent_drained()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.agent_gone(exc)


class UpstreamChannel(asyncssh.SSHClientSession[bytes]):
    """The target's side of a relayed channel."""

    def __init__(self, session: ChannelSession) -> None:
        self.session = session
        self.relay = session.relay

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.relay.from_target(
            data, Stream.STDERR if datatype == asyncssh.EXTENDED_DATA_STDERR else Stream.STDOUT
        )

    def eof_received(self) -> bool:
        self.relay.target_eof()
        return True

    def exit_status_received(self, status: int) -> None:
        self.relay.target_exit_status(status)

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.relay.target_exit_signal(signal, core_dumped, msg, lang)

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.target_gone(exc)

    def pause_writing(self) -> None:
        self.relay.target_full()

    def resume_writing(self) -> None:
        self.relay.target_drained()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
