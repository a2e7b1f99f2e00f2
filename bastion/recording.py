"""Where one relayed channel meets recording, command detection and accounting.

The relay calls `output` (with the masked bytes the agent saw, which is what
is recorded), `input` and `resize` with every chunk; each is
cheap (an append to the recording sink's buffer and to the terminal
model's tail). pyte runs only when the agent presses Enter in a shell.
Input is recorded for shells and for exec stdin (bounded by
`[recordings] max_input_bytes`, past which it is only counted); SFTP's
binary protocol is not recorded. The recording goes through the bastion's
recording store (bastion/recordings/); a failed recording is logged, audited
and raised as an alert, and with `[recordings] on_failure = "close"` it ends
the session with a one-line reason; otherwise the session goes on unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.alerts import Alert
from bastion.context import AuditHandle, Bastion
from bastion.recordings import RecordingMeta, RecordingSink
from recorder import EnteredLine, TerminalModel

log = logging.getLogger("bastion.recording")


@dataclass(frozen=True)
class SessionMeta:
    session_id: str
    identity: str
    serial: int
    target: str
    login: str
    kind: str  # exec | shell | subsystem
    command: str | None
    peer: str | None

    @property
    def title(self) -> str:
        what = self.command if self.command is not None else self.kind
        return f"{self.identity} -> {self.login}@{self.target}: {what}"


class SessionTap:
    def __init__(
        self,
        bastion: Bastion,
        meta: SessionMeta,
        *,
        width: int,
        height: int,
        pty: bool,
        end_session: Callable[[str], None] | None = None,
    ) -> None:
        self.bastion = bastion
        self.meta = meta
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.time()
        # Set when the recording could not even start and the policy is to close:
        # the caller ends the session with this line before anything runs.
        self.refused: str | None = None
        self._end_session = end_session
        self._record_io = meta.kind != "subsystem"  # sftp's binary protocol is not a screen
        self._sink: RecordingSink | None = None
        bastion.session_started(
            id=meta.session_id,
            identity=meta.identity,
            serial=meta.serial,
            login=meta.login,
            target=meta.target,
            kind=meta.kind,
            command=meta.command,
            peer=meta.peer,
            started=self.started,
        )
        try:
            self._sink = bastion.recordings.open_session(
                RecordingMeta(
                    session_id=meta.session_id,
                    title=meta.title,
                    width=width,
                    height=height,
                    timestamp=int(self.started),
                    command=meta.command,
                ),
                on_failure=self._recording_failed,
            )
        except OSError as exc:
            reason = f"recording failed: {exc.strerror or exc}"
            if self._closes_on_failure:
                self.refused = f"bastion: {reason}; session not started"
            self._recording_failed(reason, starting=True)
        self._model = TerminalModel(width, height) if meta.kind == "shell" and pty else None
        self._line: tuple[AuditHandle, float, int, int] | None = None

    @property
    def _closes_on_failure(self) -> bool:
        return self.bastion.config.recordings.on_failure == "close"

    def output(self, data: bytes, screen: bytes | None = None) -> None:
        """`data` is what the agent saw (masked); `screen`, if given, what the target sent.

        The terminal model reads the target's own bytes: shell lines are
        decided on what the target's shell echoed, so masking cannot hide
        part of a command from the rules.
        """
        self.bytes_out += len(data)
        if self._sink is not None and self._record_io:
            self._sink.output(data)
        if self._model is not None:
            self._model.feed_output(data if screen is None else screen)

    def input(self, data: bytes) -> list[EnteredLine]:
        """Agent input: typed keys of a shell or exec stdin (bounded by the sink)."""
        self.bytes_in += len(data)
        if self._sink is not None and self._record_io:
            self._sink.input(data)
        if self._model is None:
            return []
        return self._model.feed_input(data)

    def resize(self, width: int, height: int) -> None:
        if self._sink is not None:
            self._sink.resize(width, height)
        if self._model is not None:
            self._model.resize(width, height)

    def marker(self, label: str) -> None:
        if self._sink is not None:
            self._sink.marker(label)

    def record_line(self, line: EnteredLine, decision: str, rule: str | None) -> None:
        """Audit a line entered in a shell; its end and byte counts come with the next one."""
        self._close_line()
        if decision not in ("allow", "alert"):
            self.marker(f"{decision}: {rule}")
        handle = self.bastion.audit(
            kind="line",
            session_id=self.meta.session_id,
            identity=self.meta.identity,
            target=self.meta.target,
            login=self.meta.login,
            command=line.text,
            certain=line.certain,
            decision=decision,
            rule=rule,
            started=time.time(),
            detail=line.reason,
        )
        self._line = (handle, time.time(), self.bytes_in, self.bytes_out)

    def _close_line(self) -> None:
        if self._line is None:
            return
        handle, _, bytes_in, bytes_out = self._line
        self.bastion.audit_update(
            handle,
            ended=time.time(),
            bytes_in=self.bytes_in - bytes_in,
            bytes_out=self.bytes_out - bytes_out,
        )
        self._line = None

    def close(self, *, exit_status: int | None, exit_signal: str | None, error: str | None) -> None:
        self._close_line()
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()  # a failure here is reported through _recording_failed
        self.bastion.session_finished(
            self.meta.session_id,
            ended=time.time(),
            exit_status=exit_status,
            exit_signal=exit_signal,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            error=error,
        )

    def _recording_failed(self, reason: str, *, starting: bool = False) -> None:
        """Called once per recording (by the sink, or when it could not open)."""
        self._sink = None
        meta = self.meta
        closing = self._closes_on_failure
        log.error(
            "session %s: %s; %s",
            meta.session_id,
            reason,
            "session closed" if closing else "session goes on unrecorded",
        )
        self.bastion.audit(
            kind="recording-error",
            session_id=meta.session_id,
            identity=meta.identity,
            target=meta.target,
            login=meta.login,
            command=meta.command,
            detail=reason,
        )
        self.bastion.raise_alert(
            Alert(
                "recording-failed",
                identity=meta.identity,
                detail=f"{reason} ({'session closed' if closing else 'session continued unrecorded'})",
                session_id=meta.session_id,
                target=meta.target,
                command=(meta.command or meta.kind)[:500],
            )
        )
        if closing and not starting and self._end_session is not None:
            # Not from inside the relay's call that failed: on the next loop turn.
            message = f"bastion: {reason}; session closed"
            asyncio.get_running_loop().call_soon(self._end_session, message)
