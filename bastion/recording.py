"""Where one relayed channel meets recording, command detection and accounting.

The relay calls `output` (with the masked bytes the agent saw, which is what
is recorded), `input` and `resize` with every chunk; each is
cheap (an append to the asciicast writer's buffer and to the terminal
model's tail). pyte runs only when the agent presses Enter in a shell.
A failed recording write turns recording off for that channel, logged and
audited, without killing the session.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bastion.context import AuditHandle, Bastion
from recorder import AsciicastWriter, EnteredLine, TerminalModel

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
        self, bastion: Bastion, meta: SessionMeta, *, width: int, height: int, pty: bool
    ) -> None:
        self.bastion = bastion
        self.meta = meta
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.time()
        self.path: Path = bastion.state.recordings / f"{meta.session_id}.cast"
        self._record_io = meta.kind != "subsystem"  # sftp's binary protocol is not a screen
        self._writer: AsciicastWriter | None = None
        try:
            self._writer = AsciicastWriter.create(
                self.path,
                width=width,
                height=height,
                title=meta.title,
                timestamp=int(self.started),
                command=meta.command,
            )
            bastion.flushables.add(self._writer)
        except OSError as exc:
            self._recording_failed(exc)
        self._model = TerminalModel(width, height) if meta.kind == "shell" and pty else None
        self._line: tuple[AuditHandle, float, int, int] | None = None
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
            recording=str(self.path) if self._writer else None,
        )

    def output(self, data: bytes, screen: bytes | None = None) -> None:
        """`data` is what the agent saw (masked); `screen`, if given, what the target sent.

        The terminal model reads the target's own bytes: shell lines are
        decided on what the target's shell echoed, so masking cannot hide
        part of a command from the rules.
        """
        self.bytes_out += len(data)
        if self._writer is not None and self._record_io:
            try:
                self._writer.output(data)
            except (OSError, ValueError) as exc:
                self._recording_failed(exc)
        if self._model is not None:
            self._model.feed_output(data if screen is None else screen)

    def input(self, data: bytes) -> list[EnteredLine]:
        self.bytes_in += len(data)
        if self._model is None:
            return []
        if self._writer is not None:
            try:
                self._writer.input(data)
            except (OSError, ValueError) as exc:
                self._recording_failed(exc)
        return self._model.feed_input(data)

    def resize(self, width: int, height: int) -> None:
        if self._writer is not None:
            try:
                self._writer.resize(width, height)
            except (OSError, ValueError) as exc:
                self._recording_failed(exc)
        if self._model is not None:
            self._model.resize(width, height)

    def marker(self, label: str) -> None:
        if self._writer is not None:
            try:
                self._writer.marker(label)
            except (OSError, ValueError) as exc:
                self._recording_failed(exc)

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
        if self._writer is not None:
            self.bastion.flushables.discard(self._writer)
            try:
                self._writer.close()
            except (OSError, ValueError) as exc:
                log.error("session %s: closing recording failed: %s", self.meta.session_id, exc)
            self._writer = None
        self.bastion.session_finished(
            self.meta.session_id,
            ended=time.time(),
            exit_status=exit_status,
            exit_signal=exit_signal,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            error=error,
        )

    def _recording_failed(self, exc: Exception) -> None:
        log.error("session %s: recording turned off: %s", self.meta.session_id, exc)
        if self._writer is not None:
            self.bastion.flushables.discard(self._writer)
        self._writer = None
        self.bastion.audit(
            kind="recording-error",
            session_id=self.meta.session_id,
            identity=self.meta.identity,
            target=self.meta.target,
            login=self.meta.login,
            detail=str(exc),
        )
