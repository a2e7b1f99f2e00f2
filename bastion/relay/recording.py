"""Recording a channel: the listener that feeds a session's RecordingSink.

The recording store (bastion/recordings/) opens a sink per session and keeps
it flushed; this listener only forwards events to it (each call an append to
a buffer). The sink never raises: a write that fails closes the recording
(the file stays valid, the descriptor is released) and calls the session's
failure callback once, which alerts and, with `[recordings] on_failure =
"close"`, ends the session. Input is bounded by the sink
(`[recordings] max_input_bytes`); SFTP's binary protocol is not recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.recordings import RecordingHeader, RecordingSink, RecordingStore
from bastion.relay.events import Decided, Exit, Input, Output, Resize
from bastion.relay.listeners import Listener


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


def open_recording(
    store: RecordingStore,
    meta: RecordingMeta,
    *,
    width: int,
    height: int,
    on_failure: Callable[[str], None],
) -> RecordingSink:
    """The session's sink; raises OSError if the recording cannot even start."""
    header = RecordingHeader(
        session_id=meta.session_id,
        title=meta.title,
        width=width,
        height=height,
        timestamp=int(time.time()),
        command=meta.command,
    )
    return store.open_session(header, on_failure=on_failure)


class RecordingListener(Listener):
    """Writes what the agent saw (and typed, or sent on stdin) into the session's sink."""

    name = "recording"

    def __init__(self, sink: RecordingSink, *, kind: str) -> None:
        self._sink = sink
        self._io = kind != "subsystem"  # SFTP's binary protocol is not a screen

    def on_output(self, event: Output) -> None:
        if self._io:
            self._sink.output(event.data)

    def on_input(self, event: Input) -> None:
        if self._io:
            self._sink.input(event.data)

    def on_resize(self, event: Resize) -> None:
        self._sink.resize(event.width, event.height)

    def on_decision(self, event: Decided) -> None:
        if event.action not in ("allow", "alert"):
            self._sink.marker(f"{event.action}: {event.rule}")

    def on_exit(self, event: Exit) -> None:
        self._sink.close()

    def abandon(self) -> None:
        """The listener was turned off for another reason: finish the file, leak nothing."""
        self._sink.close()
