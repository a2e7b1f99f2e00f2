"""One agent channel relayed to one upstream channel, byte for byte.

Callbacks only (no streams) so each chunk costs one call per hop. Flow
control is end to end: when one side's send buffer fills, the other side
stops reading, so a slow agent never makes the bastion buffer a whole file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncssh

from bastion.alerts import Alert
from bastion.context import AuditHandle, Bastion
from bastion.decide import DEFAULT_REVIEW_TIMEOUT, Verdict
from bastion.errors import UpstreamError
from bastion.identity.model import Identity
from bastion.masking import ChannelMasking, describe_counts, transfer_protocol
from bastion.recording import SessionMeta, SessionTap
from bastion.review import Held, hold_for_review
from bastion.sftp_guard import FX_PERMISSION_DENIED, SftpGuard, SftpProtocolError, status_reply
from bastion.shell_gate import LineDecision, ShellGate
from bastion.ssh.upstream import connect_upstream
from bastion.targets import Target

log = logging.getLogger("bastion.session")

EXIT_DENIED = 126
EXIT_UPSTREAM_FAILED = 255
MAX_PENDING_INPUT = 1 << 20
DEFAULT_SIZE = (80, 24)
MASK_AUDIT_EVERY = 5.0  # seconds between `masked` audit rows of one busy channel


@dataclass
class SessionRequest:
    """What the agent asked for on this channel before it started."""

    kind: str = "shell"
    command: str | None = None
    subsystem: str | None = None
    term_type: str | None = None
    term_size: tuple[int, int, int, int] | None = None
    term_modes: dict[int, int] = field(default_factory=dict)
    env: dict[bytes | str, bytes | str] = field(default_factory=dict)


class RelaySession(asyncssh.SSHServerSession[bytes]):
    def __init__(
        self,
        bastion: Bastion,
        *,
        identity: Identity,
        target: Target,
        login: str,
        session_id: str,
        peer: str | None,
        refused: list[str],
        upstream: asyncio.Task[asyncssh.SSHClientConnection] | None = None,
    ) -> None:
        self.bastion = bastion
        self.identity = identity
        self.target = target
        self.login = login
        self.session_id = session_id
        self.peer = peer
        self.refused = refused
        self.request = SessionRequest()
        self._upstream_task = upstream
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._up_chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._up_conn: asyncssh.SSHClientConnection | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_eof = False
        self._tap: SessionTap | None = None
        self._exit_status: int | None = None
        self._exit_signal: tuple[str, bool, str, str] | None = None
        self._closed = False
        self._command_audit: AuditHandle | None = None
        self._sftp: SftpGuard | None = None
        self._sftp_review: asyncio.Future[None] | None = None  # a request held for review
        self._gate: ShellGate | None = None
        self._last_output = 0.0
        self._out_buf: list[bytes] = []
        self._out_type: int | None = None
        self._flush_scheduled = False
        self._masking: ChannelMasking | None = None
        self._mask_failed = False
        self._mask_timer: asyncio.TimerHandle | None = None
        self._mask_audited = 0.0

    # --- what the agent asks for -------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Mapping[int, int]
    ) -> bool:
        self.request.term_type = term_type
        self.request.term_size = term_size
        self.request.term_modes = dict(term_modes)
        return True

    def shell_requested(self) -> bool:
        self.request.kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self.request.kind = "exec"
        self.request.command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            return False
        self.request.kind = "subsystem"
        self.request.subsystem = subsystem
        self._sftp = SftpGuard()
        return True

    def session_started(self) -> None:
        assert self._chan is not None
        self.request.env = {
            key: value for key, value in (self._chan.get_environment() or {}).items()
        }
        asyncio.ensure_future(self._start())

    # --- starting the upstream side ---------------------------------------------

    async def _start(self) -> None:
        chan = self._chan
        assert chan is not None
        request = self.request
        width, height = request.term_size[:2] if request.term_size else DEFAULT_SIZE
        command = request.command if request.kind == "exec" else request.subsystem
        meta = SessionMeta(
            session_id=self.session_id,
            identity=self.identity.name,
            serial=self.identity.serial,
            target=self.target.name,
            login=self.login,
            kind=request.kind,
            command=command,
            peer=self.peer,
        )
        try:
            self._tap = SessionTap(
                self.bastion,
                meta,
                width=width or 80,
                height=height or 24,
                pty=request.term_type is not None,
                end_session=self._end_by_rule,
            )
            if self._tap.refused is not None:  # no recording, and the policy is to close
                self._finish_agent(
                    EXIT_DENIED, message=self._tap.refused + "\r\n", error=self._tap.refused
                )
                return
            for what in self.refused:
                chan.write_stderr(f"bastion: {what} refused: not permitted by policy\r\n".encode())
            shell_allowed = self.identity.shell_allowed(self.target.name, self.target.labels)
            if request.kind == "shell" and not shell_allowed:
                self._refuse_shell(
                    "shell-not-allowed",
                    "interactive shells are not allowed for your roles; use exec",
                )
                return
            if request.kind == "exec" and request.term_type is not None and not shell_allowed:
                # Keys typed on a terminal reach whatever runs there (a pager's `!`, an
                # editor's `:!`) and are never decided: exec-only roles get no terminal.
                self._refuse_shell(
                    "terminal-not-allowed",
                    "a terminal for exec is not allowed for your roles; run without -t",
                )
                return
            if request.kind == "shell" and request.term_type is None:
                self._refuse_shell(
                    "shell-without-terminal",
                    "a shell without a terminal reads commands the bastion cannot decide; "
                    "run them with exec (ssh ... 'COMMAND')",
                )
                return
            if request.kind in ("exec", "subsystem") and not await self._decide(command or ""):
                return
            log.info(
                "session %s: %s -> %s@%s %s",
                self.session_id,
                self.identity.name,
                self.login,
                self.target.name,
                command if command is not None else request.kind,
            )
            self._masking = self._channel_masking()
            conn = await self._upstream()
            self._up_conn = conn
            if self._closed:  # the agent went away during the handshake
                conn.close()
                return
            self._up_chan, _ = await conn.create_session(
                lambda: UpstreamSession(self),
                command=request.command if request.kind == "exec" else None,
                subsystem=request.subsystem,
                env=request.env,
                request_pty=request.term_type is not None,
                term_type=request.term_type,
                term_size=request.term_size,
                term_modes=request.term_modes,
                encoding=None,
            )
        except UpstreamError as exc:
            self._fail(str(exc), kind="upstream-error")
            return
        except (asyncssh.Error, OSError) as exc:
            self._fail(
                f"target {self.target.name} refused the session: {exc}", kind="upstream-error"
            )
            return
        except Exception as exc:  # fail closed, loudly
            log.exception("session %s: internal error", self.session_id)
            self._fail(f"internal error, session closed ({type(exc).__name__})", kind="error")
            return
        if self._closed:
            self._up_chan.close()
            conn.close()
            return
        if request.kind == "shell" and request.term_type is not None:
            self._gate = ShellGate(
                forward=self._up_chan.write,
                observe=self._observe_input,
                submit=self._submit_enter,
                notify=lambda message: chan.write(f"\r\n{message}\r\n".encode()),
                last_output=lambda: self._last_output,
                pause=chan.pause_reading,
                resume=chan.resume_reading,
            )
        for data in self._pending:
            self._send_input(data)
        self._pending.clear()
        if self._pending_eof:
            self._up_chan.write_eof()
        chan.resume_reading()

    def _channel_masking(self) -> ChannelMasking | None:
        """Output masking for exec and shell channels; SFTP's binary protocol is left alone."""
        config = self.bastion.config.masking
        if not config.enabled or self.request.kind == "subsystem":
            return None
        protocol = transfer_protocol(self.request.command) if self.request.kind == "exec" else None
        if protocol is not None:
            detail = f"{protocol} file transfer: output not masked"
            self._audit(kind="masking-off", command=self.request.command, detail=detail)
            return None
        grants = self.identity.grants
        roles = [role.name for role in grants.roles] if grants is not None else []
        return ChannelMasking(
            config, config.detectors_for(roles), pty=self.request.term_type is not None
        )

    async def _decide(self, command: str) -> bool:
        """Decide the exec command (or subsystem) before anything reaches the target."""
        source = "exec" if self.request.kind == "exec" else "subsystem"
        verdict = self.bastion.decider.command(
            self.identity, self.target, self.login, command, source=source
        )
        assert self._tap is not None
        self._command_audit = self._audit(
            kind=source,
            command=command,
            decision=verdict.action,
            rule=verdict.rule,
            started=time.time(),
        )
        if verdict.allowed:
            return True
        if verdict.action == "review":
            approved, message = await self._review(verdict, command, self._say_stderr)
            if approved:
                self._say_stderr(message)
                return True
        else:
            message = _refusal(verdict)
            if verdict.end_session:
                self._session_ended_by(verdict, command)
        self._tap.marker(f"{verdict.action}: {verdict.rule}")
        self._tap.output(message.encode() + b"\r\n")
        self._finish_agent(EXIT_DENIED, message=message + "\r\n", error=message)
        return False

    def _refuse_shell(self, rule: str, reason: str) -> None:
        """Shells refused outright: by role, or because no terminal delimits their lines."""
        message = f"bastion: denied by rule {rule}: {reason}"
        self._audit(kind="shell", decision="deny", rule=rule, started=time.time())
        self._finish_agent(EXIT_DENIED, message=message + "\r\n", error=message)

    async def _review(
        self, verdict: Verdict, command: str, say: Callable[[str], None]
    ) -> tuple[bool, str]:
        held = Held(
            identity=self.identity.name,
            target=self.target.name,
            login=self.login,
            command=command,
            rule=verdict.rule,
            session_id=self.session_id,
            timeout=verdict.timeout or DEFAULT_REVIEW_TIMEOUT,
            approvers=verdict.approvers,
        )
        gate = self._gate
        return await hold_for_review(
            self.bastion,
            held,
            say=say,
            gone=lambda: self._closed,
            interrupted=(lambda: gate.interrupted) if gate is not None else lambda: False,
        )

    def _audit(self, **fields: object) -> AuditHandle:
        """An audit row that names this session, its identity, target and login."""
        return self.bastion.audit(
            session_id=self.session_id,
            identity=self.identity.name,
            target=self.target.name,
            login=self.login,
            **fields,
        )

    def _say_stderr(self, message: str) -> None:
        if self._chan is not None and not self._closed:
            self._chan.write_stderr(message.encode() + b"\r\n")

    def _say_terminal(self, message: str) -> None:
        if self._chan is not None and not self._closed:
            self._chan.write(b"\r\n" + message.encode() + b"\r\n")

    async def _upstream(self) -> asyncssh.SSHClientConnection:
        task, self._upstream_task = self._upstream_task, None
        if task is not None:
            return await task
        return await connect_upstream(
            self.bastion.authorities,
            self.target,
            login=self.login,
            identity=self.identity.name,
            session_id=self.session_id,
            timeout=self.bastion.config.server.upstream_timeout,
        )

    def _fail(self, reason: str, *, kind: str) -> None:
        log.warning("session %s: %s", self.session_id, reason)
        self._audit(
            kind=kind,
            command=self.request.command,
            detail=reason,
        )
        self._finish_agent(EXIT_UPSTREAM_FAILED, message=f"bastion: {reason}\r\n", error=reason)

    def _finish_agent(self, status: int, *, message: str, error: str) -> None:
        if self._chan is not None:
            self._chan.write_stderr(message.encode())
            self._chan.exit(status)
        self._exit_status = status
        self._close_tap(error=error)

    # --- agent -> target ---------------------------------------------------------

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if self._up_chan is not None:
            self._send_input(data)
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size > MAX_PENDING_INPUT and self._chan is not None:
            self._chan.pause_reading()

    def _send_input(self, data: bytes) -> None:
        """Agent input once the target is ready: through the shell gate, the SFTP guard, or straight."""
        assert self._up_chan is not None
        if self._gate is not None:
            self._gate.input(data)
            return
        self._observe_input(data)
        if self._sftp is not None:
            self._sftp.add(data)
            self._relay_sftp()
            return
        self._up_chan.write(data)

    def _observe_input(self, data: bytes) -> None:
        if self._tap is not None:
            self._tap.input(data)

    async def _submit_enter(self, enter: bytes) -> LineDecision:
        """The Enter key reached the model: decide each line it submits."""
        if self._tap is None:
            return LineDecision(False, "bastion: session is closing")
        refusal = None
        for line in self._tap.input(enter):
            verdict = self.bastion.decider.line(
                self.identity,
                self.target,
                self.login,
                line.text,
                certain=line.certain,
                reason=line.reason,
            )
            self._tap.record_line(line, verdict.action, verdict.rule)
            if verdict.allowed or refusal is not None:
                continue
            if verdict.action == "review":
                approved, message = await self._review(verdict, line.text, self._say_terminal)
                if not approved:
                    refusal = message
            else:
                refusal = _refusal(verdict)
                if verdict.end_session:
                    # The line is cancelled and explained first; then the session ends.
                    self._session_ended_by(verdict, line.text)
                    asyncio.get_running_loop().call_later(0.2, self._end_by_rule, refusal)
        return LineDecision(refusal is None, refusal)

    def _session_ended_by(self, verdict: Verdict, command: str) -> None:
        self.bastion.raise_alert(
            Alert(
                "session-ended",
                identity=self.identity.name,
                detail=f"rule {verdict.rule} ended the session: {verdict.reason}",
                session_id=self.session_id,
                target=self.target.name,
                rule=verdict.rule,
                command=command[:500],
            )
        )

    def _end_by_rule(self, message: str) -> None:
        if self._closed:
            return
        self._finish_agent(EXIT_DENIED, message=message + "\r\n", error=message)
        if self._up_chan is not None:
            self._up_chan.close()

    def _relay_sftp(self) -> None:
        """Forward the SFTP requests the rules allow and answer refused ones here.

        A request the rules hold for review stops the stream: it and every
        request after it wait, in order, until a reviewer decides.
        """
        assert self._sftp is not None and self._chan is not None and self._up_chan is not None
        if self._sftp_review is not None:
            if self._sftp.buffered > MAX_PENDING_INPUT:
                self._chan.pause_reading()
            return
        allowed = []
        try:
            for request in self._sftp.requests():
                if request.refusal is not None:
                    verdict, command = None, request.refusal
                else:
                    verdict, command = self._sftp_verdict(request.commands)
                    if verdict is None:
                        allowed.append(request.raw)
                        continue
                if request.request_id is None:
                    continue  # INIT carries no file operation; nothing else lacks an id
                if verdict is not None and verdict.action == "review":
                    self._sftp_review = asyncio.ensure_future(
                        self._hold_sftp(request.raw, request.request_id, verdict, command)
                    )
                    break
                refusal = command if verdict is None else self._sftp_refusal(verdict, command)
                self._chan.write(status_reply(request.request_id, FX_PERMISSION_DENIED, refusal))
        except SftpProtocolError as exc:
            self._fail(f"SFTP stream refused: {exc}", kind="error")
            self._chan.close()
            return
        if allowed:
            self._up_chan.write(b"".join(allowed))

    def _sftp_verdict(self, commands: tuple[str, ...]) -> tuple[Verdict | None, str]:
        """The first verdict that does not allow one of a request's commands, and that command."""
        for command in commands:
            verdict = self.bastion.decider.command(
                self.identity, self.target, self.login, command, source="sftp"
            )
            self._audit(
                kind="sftp",
                command=command,
                decision=verdict.action,
                rule=verdict.rule,
            )
            if not verdict.allowed:
                return verdict, command
        return None, ""

    def _sftp_refusal(self, verdict: Verdict, command: str) -> str:
        refusal = _refusal(verdict)
        if verdict.end_session:
            self._session_ended_by(verdict, command)
            asyncio.get_running_loop().call_later(0.2, self._end_by_rule, refusal)
        return refusal

    async def _hold_sftp(self, raw: bytes, request_id: int, verdict: Verdict, command: str) -> None:
        """Wait for a reviewer on one SFTP request, then let the stream behind it go on."""
        try:
            approved, message = await self._review(verdict, command, self._say_stderr)
        except Exception:  # fail closed: the request is refused
            log.exception("SFTP review failed")
            approved, message = False, "bastion: the review failed; denied"
        if self._closed or self._chan is None or self._up_chan is None:
            return
        self._say_stderr(message)
        if approved:
            self._up_chan.write(raw)
        else:
            self._chan.write(status_reply(request_id, FX_PERMISSION_DENIED, message))
        self._sftp_review = None
        self._chan.resume_reading()
        self._relay_sftp()

    def eof_received(self) -> bool:
        if self._up_chan is not None:
            self._up_chan.write_eof()
        else:
            self._pending_eof = True
        return True  # stay half-open until the target finishes

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.request.term_size = (width, height, pixwidth, pixheight)
        if self._tap is not None:
            self._tap.resize(width, height)
        if self._up_chan is not None:
            self._up_chan.change_terminal_size(width, height, pixwidth, pixheight)

    def signal_received(self, signal: str) -> None:
        if self._up_chan is not None:
            self._up_chan.send_signal(signal)

    def break_received(self, msec: int) -> bool:
        if self._up_chan is not None:
            self._up_chan.send_break(msec)
            return True
        return False

    def pause_writing(self) -> None:
        if self._up_chan is not None:
            self._up_chan.pause_reading()

    def resume_writing(self) -> None:
        if self._up_chan is not None:
            self._up_chan.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._gate is not None:
            self._gate.close()
        if self._up_chan is not None:
            self._up_chan.close()
        if self._up_conn is not None:
            self._up_conn.close()
        if self._upstream_task is not None:
            self._upstream_task.cancel()
        if self._mask_timer is not None:
            self._mask_timer.cancel()
        self._close_tap(error=str(exc) if exc else None)

    # --- target -> agent (called by UpstreamSession) -----------------------------

    def upstream_data(self, data: bytes, datatype: int | None) -> None:
        """Target output: gathered for the rest of this event-loop turn, then sent at once.

        A target's pty hands sshd a few KiB at a time; relaying each as its own
        packet through two more SSH layers costs more than the bytes. One
        socket read from the target yields many packets in one turn, so they
        leave as one write (up to the agent's packet size) instead.
        """
        self._last_output = time.monotonic()
        if datatype != self._out_type and self._out_buf:
            self._flush_output()
        self._out_type = datatype
        self._out_buf.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_output)

    def _flush_output(self) -> None:
        self._flush_scheduled = False
        if not self._out_buf:
            return
        data = b"".join(self._out_buf) if len(self._out_buf) > 1 else self._out_buf[0]
        self._out_buf.clear()
        raw = data
        if self._mask_failed:
            return
        if self._masking is not None:
            try:
                data = self._masking.feed(self._out_type, data)
            except Exception as exc:  # fail closed: never send what could not be masked
                self._masking_broke(exc)
                return
        if self._tap is not None:
            self._tap.output(data, screen=raw)
        self._send(self._out_type, data)
        if self._masking is not None:
            self._after_masking()

    def _send(self, datatype: int | None, data: bytes) -> None:
        if self._chan is None or not data or self._closed:
            return
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self._chan.write_stderr(data)
        else:
            self._chan.write(data)

    # --- output masking -------------------------------------------------------------

    def _after_masking(self, *, rearm: bool = True) -> None:
        """Record what the maskers found or switched off; arm the idle release."""
        masking = self._masking
        assert masking is not None
        for stream, offset in masking.new_binary():
            self._binary_output(stream, offset)
        if time.monotonic() - self._mask_audited >= MASK_AUDIT_EVERY:
            self._audit_masked()
        if rearm and masking.pending and self._mask_timer is None and not self._closed:
            delay = self.bastion.config.masking.holdback_ms / 1000
            self._mask_timer = asyncio.get_running_loop().call_later(delay, self._mask_idle)

    def _mask_idle(self) -> None:
        """The idle timer: release a held partial line once output has paused."""
        self._mask_timer = None
        if self._masking is None or self._closed:
            return
        delay = self.bastion.config.masking.holdback_ms / 1000
        idle = time.monotonic() - self._last_output
        if idle < delay:
            loop = asyncio.get_running_loop()
            self._mask_timer = loop.call_later(delay - idle, self._mask_idle)
            return
        self._release_masked()

    def _release_masked(self) -> None:
        """Send what the maskers hold (idle, or the end of the target's output)."""
        self._flush_output()
        if self._masking is None or self._mask_failed:
            return
        try:
            released = self._masking.flush()
        except Exception as exc:  # fail closed
            self._masking_broke(exc)
            return
        for datatype, data in released:
            if self._tap is not None:
                self._tap.output(data, screen=b"")
            self._send(datatype, data)
        self._after_masking(rearm=False)

    def _audit_masked(self) -> None:
        if self._masking is None:
            return
        found = self._masking.unaudited()
        if found:
            self._mask_audited = time.monotonic()
            self._audit(kind="masked", command=self.request.command, detail=describe_counts(found))

    def _binary_output(self, stream: str, offset: int) -> None:
        """A stream turned binary: audited, and with `binary = "close"` the channel ends."""
        policy = self.bastion.config.masking.binary
        if policy == "close":
            reason = f"binary output on {stream} refused by the masking policy; channel closed"
            log.warning("session %s: %s", self.session_id, reason)
            self._audit(kind="masking-off", command=self.request.command, detail=reason)
            self._mask_failed = True
            self._finish_agent(EXIT_DENIED, message=f"bastion: {reason}\r\n", error=reason)
            if self._up_chan is not None:
                self._up_chan.close()
            return
        detail = f"binary output on {stream} from byte {offset}: passed unmasked"
        log.warning("session %s: %s", self.session_id, detail)
        self._audit(kind="masking-off", command=self.request.command, detail=detail)

    def _masking_broke(self, exc: Exception) -> None:
        log.exception("session %s: output masking failed", self.session_id, exc_info=exc)
        self._mask_failed = True
        reason = f"output masking failed ({type(exc).__name__}); channel closed"
        self._audit(kind="error", command=self.request.command, detail=reason)
        self._finish_agent(EXIT_UPSTREAM_FAILED, message=f"bastion: {reason}\r\n", error=reason)
        if self._up_chan is not None:
            self._up_chan.close()

    def upstream_eof(self) -> None:
        self._release_masked()
        if self._chan is not None and not self._mask_failed:
            self._chan.write_eof()

    def upstream_exit_status(self, status: int) -> None:
        self._exit_status = status

    def upstream_exit_signal(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self._exit_signal = (signal, core_dumped, msg, lang)

    def upstream_closed(self, exc: Exception | None) -> None:
        self._release_masked()
        chan = self._chan
        if chan is not None and not self._closed and not self._mask_failed:
            if self._exit_signal is not None:
                chan.exit_with_signal(*self._exit_signal)
            elif self._exit_status is not None:
                chan.exit(self._exit_status)
            else:
                if exc is not None:
                    chan.write_stderr(
                        f"bastion: connection to {self.target.name} lost\r\n".encode()
                    )
                chan.exit(EXIT_UPSTREAM_FAILED)
        if self._up_conn is not None:
            self._up_conn.close()
        self._close_tap(error=str(exc) if exc else None)

    def upstream_pause(self) -> None:
        if self._chan is not None:
            self._chan.pause_reading()

    def upstream_resume(self) -> None:
        if self._chan is not None:
            self._chan.resume_reading()

    def _close_tap(self, *, error: str | None) -> None:
        if self._tap is not None:
            self._audit_masked()
        tap, self._tap = self._tap, None
        if tap is None:
            return
        signal = self._exit_signal[0] if self._exit_signal else None
        tap.close(exit_status=self._exit_status, exit_signal=signal, error=error)
        if self._command_audit is not None:
            self.bastion.audit_update(
                self._command_audit,
                ended=time.time(),
                exit_status=self._exit_status,
                bytes_in=tap.bytes_in,
                bytes_out=tap.bytes_out,
            )


class UpstreamSession(asyncssh.SSHClientSession[bytes]):
    """The target's side of a relayed channel; hands everything to the RelaySession."""

    def __init__(self, relay: RelaySession) -> None:
        self.relay = relay

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.relay.upstream_data(data, datatype)

    def eof_received(self) -> bool:
        self.relay.upstream_eof()
        return True

    def exit_status_received(self, status: int) -> None:
        self.relay.upstream_exit_status(status)

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.relay.upstream_exit_signal(signal, core_dumped, msg, lang)

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.upstream_closed(exc)

    def pause_writing(self) -> None:
        self.relay.upstream_pause()

    def resume_writing(self) -> None:
        self.relay.upstream_resume()


def _refusal(verdict: Verdict) -> str:
    """What the agent reads when a rule stops a command (SPEC section 9)."""
    if verdict.end_session:
        return f"bastion: session ended by rule {verdict.rule}: {verdict.reason}"
    return f"bastion: denied by rule {verdict.rule}: {verdict.reason}"
