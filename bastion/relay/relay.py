"""One relayed channel: bytes both ways, one transform, listeners on the side.

    agent --from_agent--> [input handler: straight | shell gate | SFTP] --to_target--> target
    agent <--to_agent---- [output transform: masking] <--from_target---------------- target
                 \\__ every byte becomes an event for the listeners (recording, accounting...)

The relay knows nothing of SSH: it talks to an AgentEnd and a TargetEnd
(bastion/ssh/channel.py adapts asyncssh channels to them), so it is tested
with plain objects. Output that arrives within one event-loop turn leaves
as one write: the target's sshd hands over a few KiB at a time, and each
write costs more in the two SSH layers above than its bytes do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bastion.relay.events import Exit, Input, Output, Resize, Stream
from bastion.relay.flow import FlowControl
from bastion.relay.listeners import Listeners

log = logging.getLogger("bastion.relay")

MAX_PENDING_INPUT = 1 << 20  # agent input buffered before the target is ready
EXIT_UPSTREAM_FAILED = 255


class AgentEnd(Protocol):
    """The agent's side of the channel (what the relay may do to it)."""

    def write(self, data: bytes) -> None: ...
    def write_stderr(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def exit(self, status: int) -> None: ...
    def exit_with_signal(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class TargetEnd(Protocol):
    """The target's side of the channel."""

    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def change_terminal_size(
        self, width: int, height: int, pixwidth: int, pixheight: int
    ) -> None: ...
    def send_signal(self, signal: str) -> None: ...
    def send_break(self, msec: int) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


class OutputTransform(Protocol):
    """Rewrites target output before anyone sees it (masking). Raising closes the channel."""

    def feed(self, stream: Stream, data: bytes) -> bytes: ...

    def release_at(self) -> float | None:
        """When (time.monotonic()) `release` must be called next, or None."""
        ...

    def release(self) -> list[tuple[Stream, bytes]]:
        """What is due now (held tails past their time, corrections)."""
        ...

    def flush(self) -> list[tuple[Stream, bytes]]:
        """Everything held (the output ended)."""
        ...


class Relay:
    def __init__(
        self,
        agent: AgentEnd,
        listeners: Listeners,
        *,
        pty: bool,
        on_transform_failed: Callable[[Exception], None] | None = None,
    ) -> None:
        self.agent = agent
        self.listeners = listeners
        self.pty = pty
        self.flow = FlowControl(agent.pause_reading, agent.resume_reading)
        self.target: TargetEnd | None = None
        self.transform: OutputTransform | None = None
        self.input_handler: Callable[[bytes], None] | None = None
        self.closed = False
        self.last_output = 0.0  # time.monotonic() of the last target output
        self._on_transform_failed = on_transform_failed
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_eof = False
        self._pending_limit = MAX_PENDING_INPUT
        self._pending_changed: asyncio.Event | None = None  # someone waits in pending_input
        self._out: list[bytes] = []
        self._out_stream = Stream.STDOUT
        self._flush_scheduled = False
        self._release_timer: asyncio.TimerHandle | None = None
        self._exit_status: int | None = None
        self._exit_signal: tuple[str, bool, str, str] | None = None
        self._ended = False
        self._echoes: list[bytes] = []  # the bastion's own drawing, behind held-back output
        # A shell's gate tells listeners of the keys itself, when it reads them (a key
        # typed for a password prompt is then known as secret), with `input_read`.
        self.input_events = True
        self.eof_to_agent = True  # a shell not started yet keeps the channel open for its reason

    # --- wiring ------------------------------------------------------------------------

    def attach_target(
        self, target: TargetEnd, input_handler: Callable[[bytes], None] | None = None
    ) -> None:
        """The target's channel is open: input flows from now on, pending input first."""
        self.target = target
        self.input_handler = input_handler or target.write
        self.flow.attach_target(target.pause_reading, target.resume_reading)
        pending, self._pending = self._pending, []
        self._pending_size = 0
        for data in pending:  # listeners see it now: they were attached after it arrived
            if self.input_events:
                self.listeners.emit(Input(data))
            self.input_handler(data)
        self.flow.go_agent("pending")
        if self._pending_eof:
            target.write_eof()

    # --- agent -> target ---------------------------------------------------------------

    def from_agent(self, data: bytes) -> None:
        if self.closed:
            return
        if self.input_handler is None:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size > self._pending_limit:
                self.flow.stop_agent("pending")
            if self._pending_changed is not None:
                self._pending_changed.set()
            return
        if self.input_events:
            self.listeners.emit(Input(data))
        self.input_handler(data)

    def input_read(self, data: bytes) -> None:
        """Keys the shell's gate read (secret ones as stars): what listeners record as input."""
        if data and not self.closed:
            self.listeners.emit(Input(data))

    def pending_bytes(self) -> bytes:
        """Agent input buffered so far, before the target opened."""
        return b"".join(self._pending)

    async def pending_input(self, limit: int, timeout: float) -> tuple[bytes, bool]:
        """Agent input buffered before the target opened: (bytes, True) once the agent ended
        its input, (bytes so far, False) past `limit` bytes, `timeout` seconds or the close.

        A decision that needs the whole of an exec's stdin (Python code piped to `python3`)
        waits here; nothing reaches the target until attach_target.
        """
        self._pending_limit = max(self._pending_limit, limit)
        self.flow.go_agent("pending")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._pending_changed = asyncio.Event()
        try:
            while not (self._pending_eof or self.closed or self._pending_size > limit):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._pending_changed.clear()
                try:
                    await asyncio.wait_for(self._pending_changed.wait(), remaining)
                except TimeoutError:
                    break
        finally:
            self._pending_changed = None
        return self.pending_bytes(), self._pending_eof and self._pending_size <= limit

    def to_target(self, data: bytes) -> None:
        if self.target is not None and not self.closed:
            try:
                self.target.write(data)
            except BrokenPipeError:
                pass  # the target is going away; its channel reports how (target_closed)

    def agent_eof(self) -> None:
        if self.target is not None and self.input_handler is not None:
            self.target.write_eof()
        else:
            self._pending_eof = True
            if self._pending_changed is not None:
                self._pending_changed.set()

    def resize(self, width: int, height: int, pixwidth: int = 0, pixheight: int = 0) -> None:
        self.listeners.emit(Resize(width, height))
        if self.target is not None:
            self.target.change_terminal_size(width, height, pixwidth, pixheight)

    def signal(self, name: str) -> None:
        if self.target is not None:
            self.target.send_signal(name)

    def send_break(self, msec: int) -> bool:
        if self.target is None:
            return False
        self.target.send_break(msec)
        return True

    # --- target -> agent ---------------------------------------------------------------

    def from_target(self, data: bytes, stream: Stream) -> None:
        """Gathered for the rest of this loop turn, then sent as one write."""
        self.last_output = time.monotonic()
        if stream is not self._out_stream and self._out:
            self._flush_output()
        self._out_stream = stream
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_output)

    def _flush_output(self) -> None:
        self._flush_scheduled = False
        if not self._out or self._echoes:
            return  # output behind a waiting echo goes after it (release_held)
        raw = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        if self.closed:
            return
        stream = self._out_stream
        data = raw
        if self.transform is not None:
            try:
                data = self.transform.feed(stream, raw)
            except Exception as exc:  # fail closed: never send what could not be masked
                self._transform_failed(exc)
                return
            self._arm_release()
        self._emit_output(data, stream, raw)

    def _emit_output(self, data: bytes, stream: Stream, raw: bytes) -> None:
        if data or raw:
            self.listeners.emit(Output(data, stream, raw))
        if data:
            if stream is Stream.STDERR:
                self.agent.write_stderr(data)
            else:
                self.agent.write(data)

    def _arm_release(self) -> None:
        """A timer for the transform's next deadline (moved earlier if that changed)."""
        assert self.transform is not None
        when = self.transform.release_at()
        if when is None:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + max(0.0, when - time.monotonic())
        if self._release_timer is not None:
            if self._release_timer.when() <= at + 0.0005:
                return
            self._release_timer.cancel()
        self._release_timer = loop.call_at(at, self._release_due)

    def _release_due(self) -> None:
        """The transform's time came: send what is due, and wait for the next one."""
        self._release_timer = None
        if self.closed or self.transform is None:
            return
        self._flush_output()
        if self.closed:
            return
        try:
            released = self.transform.release()
        except Exception as exc:  # fail closed
            self._transform_failed(exc)
            return
        for stream, data in released:
            self._emit_output(data, stream, b"")
        if self._echoes and self.transform.release_at() is None:
            self._echoes_then_output()  # what the drawing waited behind has gone out
            return
        self._arm_release()

    def release_held(self) -> None:
        """Everything gathered or held back goes out now (idle, EOF, the channel's end).

        In order: what the transform held, the bastion's drawing that waited
        behind it, then the output that arrived after that drawing.
        """
        if not self._echoes:
            self._flush_output()
        if self.closed:
            self._echoes.clear()
            return
        if self.transform is None:
            self._echoes_then_output()
            return
        try:
            released = self.transform.flush()
        except Exception as exc:  # fail closed
            self._transform_failed(exc)
            return
        for stream, data in released:
            self._emit_output(data, stream, b"")
        if self._echoes:
            self._echoes_then_output()

    def echo(self, data: bytes) -> None:
        """The bastion's own drawing on the agent's terminal (the line editor, its messages).

        It keeps its place in the output: output that arrived before it goes
        first (what the transform holds back, masking waiting for the rest of
        a line, is waited for, never forced out), output after it goes after.
        """
        if self.closed or not data:
            return
        if not self._echoes and self._out:
            self._flush_output()  # what arrived before this drawing, first
        if self._echoes or (self.transform is not None and self.transform.release_at() is not None):
            self._echoes.append(data)
            return
        self._emit_output(data, Stream.STDOUT, b"")

    def _echoes_then_output(self) -> None:
        """The bastion's drawings that waited, then the output that arrived after them."""
        self._emit_echoes()
        self._flush_output()

    def _emit_echoes(self) -> None:
        echoes, self._echoes = self._echoes, []
        for data in echoes:
            self._emit_output(data, Stream.STDOUT, b"")

    def _transform_failed(self, exc: Exception) -> None:
        log.error("output transform failed: %r", exc)
        if self._on_transform_failed is not None:
            self._on_transform_failed(exc)
        else:
            self.finish(
                EXIT_UPSTREAM_FAILED, f"bastion: output transform failed ({type(exc).__name__})"
            )

    def target_eof(self) -> None:
        self.release_held()
        if not self.closed and self.eof_to_agent:
            self.agent.write_eof()

    def target_exit_status(self, status: int) -> None:
        self._exit_status = status

    def target_exit_signal(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self._exit_signal = (signal, core_dumped, msg, lang)

    def target_closed(self, exc: Exception | None, target_name: str) -> None:
        """The target's channel is gone: the agent gets its exit status (or 255 and why)."""
        self.release_held()
        if self.closed:
            self._end(error=str(exc) if exc else None)
            return
        self.closed = True
        if self._exit_signal is not None:
            self.agent.exit_with_signal(*self._exit_signal)
        elif self._exit_status is not None:
            self.agent.exit(self._exit_status)
        else:
            if exc is not None:
                self._say(f"bastion: connection to {target_name} lost", Stream.STDERR)
            self._exit_status = EXIT_UPSTREAM_FAILED
            self.agent.exit(EXIT_UPSTREAM_FAILED)
        self._end(error=str(exc) if exc else None)

    def target_full(self) -> None:
        self.flow.stop_agent("target-full")

    def target_drained(self) -> None:
        self.flow.go_agent("target-full")

    def agent_full(self) -> None:
        self.flow.stop_target("agent-full")

    def agent_drained(self) -> None:
        self.flow.go_target("agent-full")

    # --- the bastion's own words, and the end --------------------------------------

    def newline(self) -> bytes:
        return b"\r\n" if self.pty else b"\n"

    def say(self, message: str, stream: Stream = Stream.STDERR) -> None:
        """One line from the bastion to the agent (recorded as output like any other)."""
        if not self.closed:
            self._say(message, stream)

    def _say(self, message: str, stream: Stream) -> None:
        self._emit_output(message.encode("utf-8", "replace") + self.newline(), stream, b"")

    def say_on_terminal(self, message: str) -> None:
        """A message on its own line of the agent's terminal (a shell's denied line)."""
        self.echo(b"\r\n" + message.encode("utf-8", "replace") + b"\r\n")

    def hold_input(self) -> None:
        self.flow.stop_agent("gate")

    def release_input(self) -> None:
        self.flow.go_agent("gate")

    def finish(self, status: int, message: str | None = None) -> None:
        """End the channel from the bastion's side: a last line, an exit status, the target closed."""
        if self.closed:
            return
        if message:
            self._say(message, Stream.STDERR)
        self.closed = True
        self._exit_status = status
        self.agent.exit(status)
        if self.target is not None:
            self.target.close()
        self._end(error=message)

    def agent_closed(self, exc: Exception | None) -> None:
        """The agent's channel is gone, whatever state we were in."""
        self.closed = True
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        if self.target is not None:
            self.target.close()
        self._end(error=str(exc) if exc else None)

    @property
    def exit_status(self) -> int | None:
        return self._exit_status

    def _end(self, *, error: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._pending_changed is not None:
            self._pending_changed.set()
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        signal = self._exit_signal[0] if self._exit_signal else None
        self.listeners.emit(Exit(self._exit_status, signal, error))
