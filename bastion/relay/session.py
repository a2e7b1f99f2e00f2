"""One session channel, from its request to its exit.

    request -> admission (pure) -> session row (durable) -> listeners attached
            -> decision of the exec/subsystem (durable audit row; review may hold it)
            -> upstream channel opened -> relay runs, input through the right handler

Everything the agent sees from the bastion is one line on stderr (or the
terminal) and an exit status: 126 for a refusal, 255 when the target or the
bastion failed. Any unexpected error closes the channel: fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from bastion import logs, metrics
from bastion.alerts import Alert
from bastion.audit import AUDIT_UNAVAILABLE, AuditEntry, AuditHandle, AuditUnavailable
from bastion.context import Bastion
from bastion.decide import DEFAULT_REVIEW_TIMEOUT, Verdict
from bastion.errors import UpstreamError
from bastion.identity.model import Identity
from bastion.masking import describe_counts, transfer_audit, transfer_protocol
from bastion.relay.accounting import Accounting
from bastion.relay.admission import Admission, admit
from bastion.relay.carried_session import Carriage
from bastion.relay.events import Decided, Opened
from bastion.relay.gate import LineDecision, ShellGate, ShellOutput, TypedLine
from bastion.relay.listeners import Listener, Listeners
from bastion.relay.masking import MaskingTransform, describe_event
from bastion.relay.recording import RecordingListener, RecordingMeta, open_recording
from bastion.relay.relay import EXIT_UPSTREAM_FAILED, AgentEnd, Relay, TargetEnd
from bastion.relay.request import ChannelRequest
from bastion.relay.sftp import SftpRelay
from bastion.relay.shell_context import MAX_FED_BYTES, SessionContext
from bastion.relay.shell_guard import refusal_of_line
from bastion.relay.shell_start import new_shell_start, not_started_reason
from bastion.relay.terminal_programs import misread_reason, reader_for
from bastion.review import Held, hold_for_review
from bastion.session_log import SessionOpened
from bastion.targets import Target
from masking import Event as MaskingEvent

log = logging.getLogger("bastion.session")

EXIT_DENIED = 126
END_BY_RULE_DELAY = 0.2  # a shell line is cancelled and explained first, then the session ends


class Upstream(Protocol):
    """Opens the target's side of this channel (bastion/ssh/upstream.py: UpstreamConnector).

    Every failure to open is an UpstreamError whose message the agent sees.
    """

    async def open(
        self, request: ChannelRequest, env: Mapping[str, str], session: ChannelSession
    ) -> TargetEnd: ...

    def close(self) -> None: ...


def refusal_message(verdict: Verdict) -> str:
    """What the agent reads when a rule stops a command (SPEC section 9)."""
    if verdict.end_session:
        return f"bastion: session ended by rule {verdict.rule}: {verdict.reason}"
    return f"bastion: denied by rule {verdict.rule}: {verdict.reason}"


class ChannelSession:
    def __init__(
        self,
        bastion: Bastion,
        agent: AgentEnd,
        *,
        identity: Identity,
        target: Target,
        login: str,
        session_id: str,
        peer: str | None,
        notices: list[str],
        upstream: Upstream,
    ) -> None:
        self.bastion = bastion
        self.identity = identity
        self.target = target
        self.login = login
        self.session_id = session_id
        self.peer = peer
        self.notices = notices  # requests refused on the connection (agent forwarding, X11)
        self.listeners = Listeners(on_failure=self._listener_failed)
        self.relay = Relay(
            agent, self.listeners, pty=False, on_transform_failed=self._masking_broke
        )
        self.request: ChannelRequest | None = None
        self.accounting: Accounting | None = None
        self.gate: ShellGate | None = None
        self.shell_context = SessionContext(login)  # what earlier lines of the shell set up
        self._upstream = upstream
        self._task: asyncio.Task[None] | None = None
        self._end_timer: asyncio.TimerHandle | None = None
        self._recording_refused: str | None = None  # set when "close" and it cannot start
        self.carriage = Carriage(
            bastion.carried,
            lambda line, record, env, pipelined, payload: bastion.decisions.carried(
                identity, target, login, line, record, env, pipelined, payload
            ),
            identity=identity.name,
            target=target.name,
            login=login,
        )

    # --- the life of the channel -----------------------------------------------------

    def start(self, request: ChannelRequest) -> None:
        self.request = request
        self.relay.pty = request.pty
        self._task = asyncio.ensure_future(self._run(request))

    async def _run(self, request: ChannelRequest) -> None:
        logs.bind(
            session_id=self.session_id,
            identity=self.identity.name,
            target=self.target.name,
            login=self.login,
        )
        try:
            await self._open(request)
        except AuditUnavailable:
            self._finish(EXIT_DENIED, AUDIT_UNAVAILABLE)
        except UpstreamError as exc:
            self._fail(str(exc), kind="upstream-error")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # fail closed, loudly
            log.exception("session %s: internal error", self.session_id)
            self._fail(f"internal error, session closed ({type(exc).__name__})", kind="error")

    async def _open(self, request: ChannelRequest) -> None:
        admission = self._admission(request)
        await self.bastion.sessions.opened(
            SessionOpened(
                id=self.session_id,
                identity=self.identity.name,
                serial=self.identity.serial,
                login=self.login,
                target=self.target.name,
                kind=request.kind,
                command=request.what,
                peer=self.peer,
                started=time.time(),
                recording=self.bastion.recordings.location(self.session_id),
            )
        )
        self._attach_listeners(request)
        if self._recording_refused is not None:  # no recording, and the policy is to close
            self._finish(EXIT_DENIED, self._recording_refused)
            return
        self.listeners.emit(Opened(request))
        for what in self.notices:
            self.relay.say(f"bastion: {what} refused: not permitted by policy")
        if admission.env_refused:
            self._note("env-refused", detail="not forwarded: " + " ".join(admission.env_refused))
        if admission.refusal is not None:
            refusal = admission.refusal
            metrics.decision_counted(request.kind, "deny", refusal.rule)
            await self._record(
                "shell" if request.kind == "shell" else request.kind,
                decision="deny",
                rule=refusal.rule,
                started=time.time(),
            )
            self._finish(EXIT_DENIED, refusal.message)
            return
        if request.kind in ("exec", "subsystem"):
            if not await self._decide_request(request, admission):
                return
        log.info(
            "session %s: %s -> %s@%s %s",
            self.session_id,
            self.identity.name,
            self.login,
            self.target.name,
            request.what if request.what is not None else request.kind,
        )
        self.relay.transform = self._masking(request)
        await self._open_upstream(request, admission)

    def _admission(self, request: ChannelRequest) -> Admission:
        labels = self.target.labels
        grants = self.identity.grants
        env_names = grants.env_names(self.target.name, labels, self.login) if grants else None
        return admit(
            request,
            shell_allowed=self.identity.shell_allowed(self.target.name, labels),
            env_names=env_names,
        )

    def _attach_listeners(self, request: ChannelRequest) -> None:
        bastion = self.bastion
        self.accounting = Accounting(
            bastion.audit,
            bastion.sessions,
            bastion.alerts,
            session_id=self.session_id,
            identity=self.identity.name,
            target=self.target.name,
        )
        self.listeners.attach(self.accounting)
        width, height = request.size
        meta = RecordingMeta(
            self.session_id,
            self.identity.name,
            self.target.name,
            self.login,
            request.kind,
            request.what,
        )
        try:
            sink = open_recording(
                bastion.recordings,
                meta,
                width=width,
                height=height,
                on_failure=self._recording_failed,
            )
        except OSError as exc:
            reason = f"recording failed: {exc.strerror or exc}"
            if self._closes_on_recording_failure:
                self._recording_refused = f"bastion: {reason}; session not started"
            self._recording_failed(reason, starting=True)
        else:
            self.listeners.attach(RecordingListener(sink, kind=request.kind))

    async def _open_upstream(self, request: ChannelRequest, admission: Admission) -> None:
        if request.kind == "shell":
            await self._open_shell(request, admission)
            return
        target = await self._upstream.open(request, dict(admission.env), self)
        if self.relay.closed:  # the agent went away during the handshake
            self._upstream.close()
            return
        if request.kind == "subsystem":
            watcher = self.carriage.sftp_watcher()
            self.listeners.attach(watcher)
            sftp = SftpRelay(self.relay, self._decide_sftp, watcher)
            self.relay.attach_target(target, sftp.input)
        else:
            self.relay.attach_target(target)

    async def _open_shell(self, request: ChannelRequest, admission: Admission) -> None:
        """The target runs the bastion's bash (bastion/relay/shell_start.py), not a plain shell."""
        start = new_shell_start()
        shell = replace(request, kind="exec", command=start.command, term_modes=start.term_modes)
        target = await self._upstream.open(shell, dict(admission.env), self)
        if self.relay.closed:
            self._upstream.close()
            return
        width, _ = request.size
        self.gate = ShellGate(self.relay, self, start, width=width, target_name=self.target.name)
        self.relay.transform = ShellOutput(self.gate, self.relay.transform)
        self.listeners.attach(self.gate)
        self.relay.attach_target(target, self.gate.input)
        self.gate.begin()

    def agent_gone(self, exc: Exception | None) -> None:
        """The agent's channel closed, whatever we were doing."""
        self.relay.agent_closed(exc)
        if self.gate is not None:
            self.gate.close()
        if self._end_timer is not None:
            self._end_timer.cancel()
        self._upstream.close()

    def target_gone(self, exc: Exception | None) -> None:
        if self.gate is not None and not self.gate.started:
            self.relay.say(not_started_reason(self.target.name, self.relay.exit_status))
        self.relay.target_closed(exc, self.target.name)
        self._upstream.close()

    # --- decisions -------------------------------------------------------------------

    async def _verdict(self, command: str, source: str) -> Verdict:
        return await self.bastion.decisions.command(
            self.identity, self.target, self.login, command, source=source
        )

    async def _decide_request(self, request: ChannelRequest, admission: Admission) -> bool:
        """Decide the exec command (or subsystem) before anything reaches the target."""
        source = "exec" if request.kind == "exec" else "subsystem"
        command = request.what or ""
        verdict = await self._verdict(command, source)
        carried = None
        if source == "exec":  # files the bastion carried, run by this command
            verdict, carried = await self.carriage.decide_exec(
                command, verdict, dict(admission.env), self.relay
            )
        env = " ".join(f"{name}={value}" for name, value in admission.env)
        detail = "; ".join(filter(None, [f"env: {env}" if env else None, carried]))
        handle = await self._record(
            source,
            command=command,
            decision=verdict.action,
            rule=verdict.rule,
            started=time.time(),
            detail=detail[:1000] or None,
        )
        assert self.accounting is not None
        self.accounting.command_started(handle, exits=True)
        self.listeners.emit(Decided(source, command, verdict.action, verdict.rule))
        if verdict.allowed:
            if source == "exec":
                self.carriage.exec_allowed(command, self.relay)
            return True
        if verdict.action == "review":
            approved, message = await self._review(verdict, command, self.relay.say)
            if approved:
                self.relay.say(message)
                if source == "exec":
                    self.carriage.exec_allowed(command, self.relay)
                return True
        else:
            message = refusal_message(verdict)
            if verdict.end_session:
                self._session_ended_by(verdict, command)
        self._finish(EXIT_DENIED, message)
        return False

    # --- shell lines: the gate's GateSession --------------------------------------------

    async def decide_line(self, typed: TypedLine) -> LineDecision:
        """A line the agent submitted in the shell: for the shell, or for what runs there."""
        if self.relay.closed:
            return LineDecision(False, "bastion: session is closing")
        reader = typed.reader
        if reader is None:
            verdict = await self._shell_line_verdict(typed.text)
            verdict = await self.carriage.line(typed.text, verdict)  # runs of carried files
            detail = None
        else:
            verdict = await self._input_verdict(typed)
            detail = f"typed into {reader.name} (started by: {reader.line})"[:1000]
        command = "(secret input, not recorded)" if typed.secret else typed.text
        handle = await self._record(
            "line",
            command=command,
            certain=True,
            decision=verdict.action,
            rule=verdict.rule,
            started=time.time(),
            detail=detail,
        )
        assert self.accounting is not None and self.gate is not None
        self.listeners.emit(Decided("line", command, verdict.action, verdict.rule))
        allowed, message = verdict.allowed, None
        if not allowed and verdict.action == "review" and not typed.secret:
            shown = typed.text if reader is None else f"[typed into {reader.name}] {typed.text}"
            allowed, message = await self._review(verdict, shown, self.gate.say)
            if allowed:
                self.gate.say(message)
                message = None
        elif not allowed:
            message = refusal_message(verdict)
            if verdict.end_session:
                self._end_by_rule(verdict, command, message)
        if reader is None:
            self.accounting.command_started(handle, exits=False)
            if not allowed:
                self.accounting.command_ended(None)
        if not allowed:
            return LineDecision(False, message)
        next_reader = reader_for(typed.text, verdict.commands) if reader is None else None
        return LineDecision(True, None, next_reader, verdict.context)

    def line_sent(self, typed: TypedLine, decision: LineDecision) -> None:
        """An allowed line went to the target: later lines are decided with what it set up."""
        after = decision.context  # type: ignore[arg-type]
        if typed.reader is None:
            self.shell_context.ran(after)
        elif not typed.secret:
            self.shell_context.fed(typed.reader, typed.text, after)
            self.carriage.typed(typed.reader.line, self.shell_context.typed_into(typed.reader))

    async def _shell_line_verdict(self, text: str) -> Verdict:
        """A shell line decided in the context the session's earlier lines left."""
        verdict = await self.bastion.decisions.line(
            self.identity,
            self.target,
            self.login,
            text,
            certain=True,
            reason=None,
            context=self.shell_context.current,
        )
        verdict = _input_decided_here(text, verdict)
        refused = refusal_of_line(text, verdict.commands)
        if refused is not None:
            return Verdict("deny", refused.rule, refused.reason, commands=verdict.commands)
        return verdict

    async def _input_verdict(self, typed: TypedLine) -> Verdict:
        """Text typed into a program the shell runs, judged as that program's input."""
        reader = typed.reader
        assert reader is not None
        decider = self.bastion.decider
        program = reader.program
        if typed.secret:
            if reader.passwords or (program is not None and program.reads == "data"):
                return Verdict("allow", None, "typed at a password prompt")
            why = f"a password prompt from {reader.name}, which the bastion does not know"
            return Verdict("deny", "secret-input", why + "; the input was not sent")
        if program is None or not reader.understands_input:
            why = f"typed into {reader.name}, a program whose input the bastion does not understand"
            return decider.not_understood(self.identity, self.target, self.login, why)
        misread = misread_reason(program, typed.text)
        if misread is not None:
            return decider.not_understood(self.identity, self.target, self.login, misread)
        script = self.shell_context.input_script(reader, typed.text)
        if script is None:
            why = f"more than {MAX_FED_BYTES // 1024} KiB typed into {reader.name}"
            return decider.not_understood(self.identity, self.target, self.login, why)
        command, context = script
        return await self.bastion.decisions.command(
            self.identity, self.target, self.login, command, source="line", context=context
        )

    def line_ended(self, status: int | None) -> None:
        """The shell's prompt mark said the running line ended, with this exit status."""
        if self.accounting is not None:
            self.accounting.command_ended(status)

    def shell_not_started(self, reason: str) -> None:
        self._fail(reason.removeprefix("bastion: "), kind="upstream-error")

    async def _decide_sftp(self, commands: tuple[str, ...]) -> tuple[Verdict | None, str, str]:
        """(the first verdict that does not allow a command, the command, the agent's message).

        A held request waits here for its reviewer: the SFTP stream behind it waits too.
        """
        for command in commands:
            verdict = await self._verdict(command, "sftp")
            await self._record("sftp", command=command, decision=verdict.action, rule=verdict.rule)
            self.listeners.emit(Decided("sftp", command, verdict.action, verdict.rule))
            if verdict.allowed:
                continue
            if verdict.action == "review":
                approved, message = await self._review(verdict, command, self.relay.say)
                self.relay.say(message)
                if approved:
                    continue
                return verdict, command, message
            message = refusal_message(verdict)
            if verdict.end_session:
                self._end_by_rule(verdict, command, message)
            return verdict, command, message
        return None, "", ""

    async def _review(self, verdict: Verdict, command: str, say) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
        held = Held(
            identity=self.identity.name,
            target=self.target.name,
            login=self.login,
            command=command,
            rule=verdict.rule,
            session_id=self.session_id,
            timeout=verdict.timeout or DEFAULT_REVIEW_TIMEOUT,
            approvers=verdict.approvers,
            explanation=verdict.explanation,
        )
        gate = self.gate
        return await hold_for_review(
            self.bastion,
            held,
            say=say,
            gone=lambda: self.relay.closed,
            interrupted=(lambda: gate.interrupted) if gate is not None else lambda: False,
        )

    # --- masking ---------------------------------------------------------------------

    def _masking(self, request: ChannelRequest) -> MaskingTransform | None:
        """The channel's masking: exec and shell output masked; file transfers
        (SFTP, and exec channels serving scp, rsync or git) scanned, never
        modified, and an alert for any secret that goes through."""
        config = self.bastion.config.masking
        if not config.enabled:
            return None
        protocol = "sftp" if request.kind == "subsystem" else transfer_protocol(request.command)
        if protocol is not None:
            self._note(**transfer_audit(protocol), command=request.what)
        grants = self.identity.grants
        roles = [role.name for role in grants.roles] if grants is not None else []
        masker = config.channel(
            roles,
            terminal=request.pty,
            transfer=protocol is not None,
            screen=request.size if request.pty else None,
        )
        transform = MaskingTransform(
            masker,
            on_found=self._masked,
            on_events=self._masking_events,
            on_stopped=self._masking_stopped,
        )
        self.listeners.attach(transform)
        return transform

    def _masked(self, found: Mapping[str, int]) -> None:
        command = self.request.what if self.request else None
        self._note("masked", command=command, detail=describe_counts(found))

    def _masking_events(self, events: list[MaskingEvent]) -> None:
        """Secrets that went through, binary output, encoded secrets: audited and alerted."""
        command = self.request.what if self.request else None
        for event in events:
            kind, detail = describe_event(event)
            log.warning("session %s: %s", self.session_id, detail)
            self._note(kind, command=command, detail=detail)
            self.bastion.alerts.raise_alert(
                Alert(
                    kind,
                    identity=self.identity.name,
                    detail=detail,
                    session_id=self.session_id,
                    target=self.target.name,
                    command=(command or "")[:500] or None,
                )
            )

    def _masking_stopped(self) -> None:
        """`binary = "close"` and a secret in binary output: nothing of it was sent."""
        reason = "a secret in binary output, refused by the masking policy; channel closed"
        self._finish(EXIT_DENIED, f"bastion: {reason}")

    def _masking_broke(self, exc: Exception) -> None:
        log.error("session %s: output masking failed: %r", self.session_id, exc)
        reason = f"output masking failed ({type(exc).__name__}); channel closed"
        self._note("error", detail=reason)
        self._finish(EXIT_UPSTREAM_FAILED, f"bastion: {reason}")

    # --- failures of the side parts ------------------------------------------------

    def _listener_failed(self, listener: Listener, exc: Exception) -> None:
        if isinstance(listener, RecordingListener):
            listener.abandon()
            self._recording_failed(f"recording failed: {type(exc).__name__}: {exc}")
            return
        self._note("error", detail=f"{listener.name} turned off: {type(exc).__name__}: {exc}"[:500])

    @property
    def _closes_on_recording_failure(self) -> bool:
        return self.bastion.config.recordings.on_failure == "close"

    def _recording_failed(self, reason: str, *, starting: bool = False) -> None:
        """Once per recording: by its sink (a failed write), or when it could not start."""
        closing = self._closes_on_recording_failure
        outcome = "session closed" if closing else "session continued unrecorded"
        log.error("session %s: %s; %s", self.session_id, reason, outcome)
        self._note("recording-error", detail=reason[:500])
        what = self.request.what if self.request else None
        self.bastion.alerts.raise_alert(
            Alert(
                "recording-failed",
                identity=self.identity.name,
                detail=f"{reason} ({outcome})"[:500],
                session_id=self.session_id,
                target=self.target.name,
                command=what[:500] if what else None,
            )
        )
        if closing and not starting:
            # Not from inside the relay call whose write failed: on the next loop turn.
            message = f"bastion: {reason}; session closed"
            asyncio.get_running_loop().call_soon(self._finish, EXIT_DENIED, message)

    def _end_by_rule(self, verdict: Verdict, command: str, message: str) -> None:
        """The command is refused and explained first; then the session ends."""
        self._session_ended_by(verdict, command)
        loop = asyncio.get_running_loop()
        self._end_timer = loop.call_later(END_BY_RULE_DELAY, self._finish, EXIT_DENIED, message)

    def _session_ended_by(self, verdict: Verdict, command: str) -> None:
        self.bastion.alerts.raise_alert(
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

    def _fail(self, reason: str, *, kind: str) -> None:
        log.warning("session %s: %s", self.session_id, reason)
        command = self.request.command if self.request else None
        self._note(kind, command=command, detail=reason)
        self._finish(EXIT_UPSTREAM_FAILED, f"bastion: {reason}")

    def _finish(self, status: int, message: str) -> None:
        self.relay.finish(status, message)
        if self.gate is not None:
            self.gate.close()
        self._upstream.close()

    # --- audit -----------------------------------------------------------------------

    def _entry(self, kind: str, **fields: object) -> AuditEntry:
        return AuditEntry(
            kind=kind,
            session_id=self.session_id,
            identity=self.identity.name,
            target=self.target.name,
            login=self.login,
            **fields,  # type: ignore[arg-type]
        )

    async def _record(self, kind: str, **fields: object) -> AuditHandle:
        """A durable row: the command may run only after this returns."""
        return await self.bastion.audit.record(self._entry(kind, **fields))

    def _note(self, kind: str, **fields: object) -> AuditHandle:
        return self.bastion.audit.note(self._entry(kind, **fields))


_FROM_AGENT = "read from the session's input"


def _input_decided_here(line: str, verdict: Verdict) -> Verdict:
    """A shell line that starts a program reading the terminal (`sqlite3 db`, `psql`) is
    held by the engine, which cannot see what will be typed there. In a shell the bastion
    owns the line: every line typed into such a program is decided as its input (its
    own language, `.shell` and `\\!` included) before it is sent. So where the program's
    input is all that was not understood, and the bastion knows how to read that input,
    the line itself may run."""
    if verdict.action != "review" or verdict.rule not in ("code-from-input", "not-understood"):
        return verdict
    reader = reader_for(line, verdict.commands)
    if reader is None or not reader.understands_input:
        return verdict
    # Only a line that is that program (or a wrapper of it) alone: any other command could
    # have met a review rule of its own, which the verdict would name only if it came first.
    size = len(reader.argv)
    if not size or any(tuple(c.argv[-size:]) != reader.argv for c in verdict.commands):
        return verdict
    unread = [c for c in verdict.commands if not getattr(c, "understood", True)]
    if not unread or not all(
        r.why.endswith(_FROM_AGENT) for c in unread for r in getattr(c, "reasons", ())
    ):
        return verdict
    why = f"what is typed into {reader.name} is decided line by line at the bastion"
    return replace(verdict, action="allow", rule=None, reason=why, understood=True)
