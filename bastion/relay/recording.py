"""Recording a channel as asciicast: the Recorder service and its listener.

The listener appends each event to the asciicast writer's buffer (cheap:
the writer coalesces and writes one line per event); the Recorder flushes
every open writer ten times a second, so a crash leaves a readable prefix.
A write that fails raises out of the listener, which the relay then turns
off for this channel (reported, audited and alerted by the session); the
session itself goes on unless `[recordings] on_failure` says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bastion.relay.events import Decided, Exit, Input, Output, Resize
from bastion.relay.listeners import Listener
from recorder import AsciicastWriter

log = logging.getLogger("bastion.recording")

MAX_EXEC_INPUT_RECORDED = 1 << 20  # exec stdin recorded up to this many bytes, then only counted


@dataclass(frozen=True)
class RecordingMeta:
    session_id: str
    identity: str
    target: str
    login: str
    kind: str  # exec | shell | subsystem
    command: str | None

    @property
    def title(self) -> str:
        what = self.command if self.command is not None else self.kind
        return f"{self.identity} -> {self.login}@{self.target}: {what}"


class Recorder:
    """Creates recordings in the state dir's recordings/ and keeps them flushed."""

    def __init__(self, directory: Path, flush_interval: float = 0.1) -> None:
        self.directory = directory
        self._interval = flush_interval
        self._open: set[AsciicastWriter] = set()

    def location(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.cast"

    def create(self, meta: RecordingMeta, *, width: int, height: int) -> AsciicastWriter:
        writer = AsciicastWriter.create(
            self.location(meta.session_id),
            width=width,
            height=height,
            title=meta.title,
            timestamp=int(time.time()),
            command=meta.command,
        )
        self._open.add(writer)
        return writer

    def release(self, writer: AsciicastWriter) -> None:
        self._open.discard(writer)

    def flush_all(self) -> None:
        for writer in list(self._open):
            try:
                writer.flush()
            except (OSError, ValueError) as exc:
                # The writer's own listener reports it at its next write; stop flushing it.
                log.error("flushing a recording failed: %s", exc)
                self._open.discard(writer)

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.flush_all()


class RecordingListener(Listener):
    """Writes what the agent saw (and typed) into one asciicast file."""

    name = "recording"

    def __init__(self, recorder: Recorder, writer: AsciicastWriter, *, kind: str) -> None:
        self._recorder = recorder
        self._writer: AsciicastWriter | None = writer
        self._io = kind != "subsystem"  # SFTP's binary protocol is not a screen
        self._shell = kind == "shell"
        self._input_left = MAX_EXEC_INPUT_RECORDED
        self.input_not_recorded = 0

    def on_output(self, event: Output) -> None:
        if self._writer is not None and self._io:
            self._writer.output(event.data)

    def on_input(self, event: Input) -> None:
        if self._writer is None or not self._io:
            return
        if self._shell:
            self._writer.input(event.data)
            return
        data = event.data[: self._input_left]
        self._input_left -= len(data)
        self.input_not_recorded += len(event.data) - len(data)
        if data:
            self._writer.input(data)

    def on_resize(self, event: Resize) -> None:
        if self._writer is not None:
            self._writer.resize(event.width, event.height)

    def on_decision(self, event: Decided) -> None:
        if self._writer is not None and event.action not in ("allow", "alert"):
            self._writer.marker(f"{event.action}: {event.rule}")

    def on_exit(self, event: Exit) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._recorder.release(writer)
        if self.input_not_recorded:
            writer.marker(f"input: {self.input_not_recorded} more bytes not recorded")
        writer.close()

    def abandon(self) -> None:
        """The listener was turned off after a failure: close the file, leak nothing."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._recorder.release(writer)
            writer.abandon()
