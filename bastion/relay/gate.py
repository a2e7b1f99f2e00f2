"""The interactive shell through the bastion: the bastion edits, decides, and sends whole lines.

The agent's keys never reach the target's shell one by one. They go to the
bastion's line editor (bastion/relay/line_editor.py), which draws the edit
on the agent's terminal; a submitted line is decided, and only a line
that was allowed goes to the target, whole, followed by Enter. The target
runs a bash that does no editing of its own and marks its prompt with
this session's nonce (bastion/relay/shell_start.py); the marks come out
of the output here (bastion/relay/prompt_marks.py) and drive the states:

    STARTING --first D--> SYNCING --A (our token) .. B--> PROMPT
    PROMPT --allowed line sent--> RUNNING --D--> SYNCING --A..B--> PROMPT
    PROMPT --Ctrl-C sent--> SYNCING
    RUNNING --alternate screen--> FULL_SCREEN --normal screen--> RUNNING
    FULL_SCREEN --D--> SYNCING

- STARTING: before the shell's first prompt. Its output is hidden (the
  setup line, bash's default prompt); keys wait. If the shell ends here,
  the agent is told why (no bash on the target), and the session ends.
- SYNCING: the shell printed a D mark (a command ended) and now reads the
  terminal until the bastion's sync line, dropping whatever was typed
  ahead and never read; the bastion sends that line with a fresh token and
  waits for the A mark that carries the token back. Keys wait.
- PROMPT: the shell waits at its prompt. Keys edit a shell line; a
  submitted line is decided; allowed, exactly that line and a newline go
  to the target (RUNNING); refused, the message is shown and the prompt
  drawn again, and nothing reaches the target. Ctrl-C clears the line and
  is sent, so the shell prints a fresh prompt. Ctrl-D on an empty line is
  sent (end of input: the shell exits).
- RUNNING: a line was sent; whatever reads the terminal now is the program
  it started. A typed line is decided as that program's input
  (bastion/relay/terminal_programs.py says which programs the bastion
  understands, and how); a program it does not know gets the role's
  unknown action; SQL is decided and sent a whole statement at a time.
  Ctrl-C, Ctrl-D, Ctrl-Z, Ctrl-\\ are sent. After a password prompt, the
  next line is secret: not echoed, not recorded, decided as a password.
- FULL_SCREEN: the program took the alternate screen. Keys pass raw if the
  table says it cannot run commands (less, man, top, htop), else only
  Ctrl-C, Ctrl-Z and Ctrl-\\ do.

No mark seen (the shell's prompt machinery lost, another shell started
inside) is RUNNING with a program the bastion does not know: lines are
not understood, keys never pass through. That is also the case for marks
with another nonce, or out of turn: they are ignored.

A decision is made for one state: if the shell's prompt came back while a
line typed into a program was being decided (the program ended), that
decision is dropped and the line is decided again, as a shell line.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bastion.relay.events import Resize, Stream
from bastion.relay.line_editor import PASTE_OFF, History, LineEditor, Signal, Submitted
from bastion.relay.listeners import Listener
from bastion.relay.output_tail import OutputTail
from bastion.relay.prompt_marks import Mark, MarkScanner
from bastion.relay.shell_start import ShellStart, new_token
from bastion.relay.terminal_programs import Reader, statement_complete

log = logging.getLogger("bastion.shell_gate")

CANCEL_LINE = b"\x03"
END_OF_INPUT = b"\x04"
SIGNAL_KEYS = {"interrupt": b"\x03", "eof": b"\x04", "suspend": b"\x1a", "quit": b"\x1c"}
MAX_HELD = 1 << 20  # keys waiting for the editor before the agent is paused
START_TIMEOUT = 20.0  # seconds for the shell's first prompt
# A line typed while a program the bastion does not know runs waits this long for the
# shell's prompt before it is decided as that program's input: typed ahead of a quick
# command, it is a shell line.
TYPE_AHEAD_WAIT = 1.0
MARK_HOLD = 0.05  # seconds a possible start of a mark is held back when output pauses
CONTINUATION = b"   ...> "


class State(enum.Enum):
    STARTING = "starting"
    SYNCING = "syncing"
    PROMPT = "prompt"
    RUNNING = "running"
    FULL_SCREEN = "full-screen"
    CLOSED = "closed"


@dataclass(frozen=True)
class TypedLine:
    """A line the agent submitted, and who would read it."""

    text: str  # the lines of a statement joined by newlines
    reader: Reader | None  # None: the shell, at its prompt
    secret: bool = False


@dataclass(frozen=True)
class LineDecision:
    allowed: bool
    message: str | None  # shown to the agent when not allowed
    reader: Reader | None = None  # for an allowed shell line: what it leaves reading the terminal
    context: object = None  # the rules.Context the line leaves (given back with `line_sent`)


class GateRelay(Protocol):
    """What the gate needs of the relay."""

    input_events: bool
    eof_to_agent: bool

    def input_read(self, data: bytes) -> None: ...
    def to_target(self, data: bytes) -> None: ...
    def echo(self, data: bytes) -> None: ...
    def hold_input(self) -> None: ...
    def release_input(self) -> None: ...
    def release_held(self) -> None: ...


class GateSession(Protocol):
    """What the gate needs of the session: decisions, and the news of a line's end."""

    async def decide_line(self, line: TypedLine) -> LineDecision: ...
    def line_sent(self, line: TypedLine, decision: LineDecision) -> None: ...
    def line_ended(self, status: int | None) -> None: ...
    def shell_not_started(self, reason: str) -> None: ...


class ShellGate(Listener):
    name = "shell-gate"

    def __init__(
        self,
        relay: GateRelay,
        session: GateSession,
        start: ShellStart,
        *,
        width: int,
        target_name: str = "the target",
    ) -> None:
        self._relay = relay
        self._session = session
        self._start = start
        self._target_name = target_name
        self.state = State.STARTING
        self.editor = LineEditor(width)
        self._scanner = MarkScanner(start.nonce)
        self._tail = OutputTail()
        self._token: str | None = None  # the sync token sent, not yet seen back
        self._prompt = b""  # the shell's visible prompt, as drawn between A and B
        self._collecting: bytearray | None = None  # prompt text between A and B
        self._reader: Reader | None = None
        self._line_running = False  # a shell line was sent and its D mark not seen yet
        self._epoch = 0  # D marks seen: a decision belongs to the epoch it began in
        self._deciding: asyncio.Task[None] | None = None
        self._deciding_epoch = 0
        # Typed for a program that ended before it was sent: typed again at the shell's prompt.
        self._handed_back = b""
        self._ready: tuple[TypedLine, LineDecision] | None = None  # allowed, for the next prompt
        self._statement: list[str] = []  # lines of an SQL statement not complete yet
        self._answer_due = False  # a line went to a readline program: wait for its output
        self._full_screen_ok = False
        self._told_full_screen = False
        self._histories: dict[str, History] = {}
        self._paused = False
        self._closed = False
        self._start_timer: asyncio.TimerHandle | None = None
        self._unread = bytearray()  # keys typed, not read by the editor yet (to record)
        self._front = 0  # keys handed back to the editor, in front of them (recorded already)
        relay.input_events = False  # the gate records keys as it reads them
        relay.eof_to_agent = False  # until the shell started: its failure is told first

    # --- life ---------------------------------------------------------------------------

    def begin(self) -> None:
        """The target's session is open: type the setup line, wait for the first prompt."""
        self._relay.to_target(self._start.setup)
        loop = asyncio.get_running_loop()
        self._start_timer = loop.call_later(START_TIMEOUT, self._start_timed_out)

    @property
    def started(self) -> bool:
        return self.state is not State.STARTING

    def close(self) -> None:
        self._closed = True
        self.state = State.CLOSED
        if self._deciding is not None:
            self._deciding.cancel()
        if self._start_timer is not None:
            self._start_timer.cancel()

    def _start_timed_out(self) -> None:
        if self.state is State.STARTING:
            self._session.shell_not_started(
                f"bastion: the shell on target {self._target_name} did not show the bastion's "
                f"prompt within {START_TIMEOUT:.0f}s; closed"
            )

    @property
    def interrupted(self) -> bool:
        """Ctrl-C typed while a line waits for its decision, or the program it was typed
        for has ended: either cancels a held review."""
        if self._deciding is None:
            return False
        return self.editor.interrupt_pending() or self._epoch != self._deciding_epoch

    def say(self, message: str) -> None:
        """A message on its own line while a line is decided (a review's progress)."""
        self._relay.echo(message.encode("utf-8", "replace") + b"\r\n")

    # --- output: marks out, the screen followed ----------------------------------------

    def filter_output(self, data: bytes) -> bytes:
        """The target's output, with this session's marks taken out and acted on."""
        out = bytearray()
        for piece in self._scanner.feed(data):
            if isinstance(piece, Mark):
                self._mark(piece)
            else:
                out += self._text(piece)
        return bytes(out)

    def flush_output(self) -> bytes:
        """Output held back as a possible start of a mark: released as it is."""
        held = self._scanner.flush()
        return self._text(held) if held else b""

    def release_at(self, last_feed: float) -> float | None:
        return last_feed + MARK_HOLD if self._scanner.pending else None

    def _text(self, text: bytes) -> bytes:
        if self.state is State.STARTING:
            return b""  # the setup line, bash's own first prompt
        if self._collecting is not None:
            self._collecting += text
        self._tail.feed(text)
        if self._answer_due and text:
            self._answer_due = False
            if self.state is State.RUNNING:
                self._soon(self._pump)
        if self._tail.entered_alternate:
            self._tail.entered_alternate = False
            if self.state is State.RUNNING:
                self._enter_full_screen()
        elif self.state is State.FULL_SCREEN and not self._tail.alternate_screen:
            self.state = State.RUNNING
            self._soon(self._pump)
        return text

    def _mark(self, mark: Mark) -> None:
        if self._closed:
            return
        if mark.kind == "D":
            self._command_ended(mark.status)
        elif mark.kind == "A":
            if (
                self.state is State.SYNCING
                and self._token is not None
                and mark.token == self._token
            ):
                self._token = None
                self._collecting = bytearray()
            else:
                log.info("a prompt mark out of turn or with a stale token was ignored")
        elif mark.kind == "B" and self._collecting is not None:
            self._prompt = bytes(self._collecting)
            self._collecting = None
            self.state = State.PROMPT
            self._soon(self._at_prompt)

    def _command_ended(self, status: int | None) -> None:
        if self.state is State.STARTING and self._start_timer is not None:
            self._start_timer.cancel()
            self._relay.eof_to_agent = True
        self._epoch += 1
        if self._line_running:
            self._line_running = False
            self._session.line_ended(status)
        self._reader = None
        if self.state is State.RUNNING and not self.editor.secret:
            # Typed while the program was ending: most likely typed ahead for the shell.
            unsent = "".join(f"{line}\r" for line in self._statement)
            if self.editor.active:
                unsent += self.editor.text
            self._handed_back += unsent.encode("utf-8")
        self._statement.clear()
        self._answer_due = False
        self._tail.alternate_screen = False
        self.editor.cancel()
        self.state = State.SYNCING
        self._collecting = None
        if self._token is None:  # one sync line at a time: a second D reads the same one
            self._token = new_token()
            self._relay.to_target(self._start.sync_line(self._token))

    def _at_prompt(self) -> None:
        if self.state is not State.PROMPT or self._closed or self._deciding is not None:
            return  # a decision in progress finishes first, then comes here
        self._relay.release_held()  # the prompt is whole: no reason to hold it back
        ready, self._ready = self._ready, None
        if ready is not None:
            self._send(*ready)
            return
        self._relay.echo(self.editor.begin(self._prompt, history=self._history("shell")))
        handed_back, self._handed_back = self._handed_back, b""
        self.editor.feed_front(handed_back)
        self._front += len(handed_back)
        self._pump()

    # --- input ----------------------------------------------------------------------------

    def input(self, data: bytes) -> None:
        if self._closed:
            return
        self.editor.feed(data)
        self._unread += data
        if self.editor.pending > MAX_HELD and not self._paused:
            self._paused = True
            self._relay.hold_input()
        self._pump()

    def on_resize(self, event: Resize) -> None:
        self._relay.echo(self.editor.resize(event.width))

    def _pump(self) -> None:
        """Let the editor read keys as far as the state allows."""
        if self._closed or self._deciding is not None:
            return
        if self.state is State.FULL_SCREEN:
            self._keys_to_full_screen()
        elif self.state in (State.PROMPT, State.RUNNING):
            while True:
                if self.state is State.RUNNING and not self.editor.active:
                    if self._answer_due or not self.editor.pending:
                        break  # the program has not answered the last line yet
                    self._begin_program_line()
                if not self.editor.active:
                    break
                before, secret = self.editor.pending, self.editor.secret
                step = self.editor.step()
                self._read(before - self.editor.pending, secret)
                self._relay.echo(step.echo)
                if step.event is None:
                    break
                self._event(step.event)
                if self._deciding is not None or self.state not in (State.PROMPT, State.RUNNING):
                    break
        if self._paused and self.editor.pending < MAX_HELD // 2:
            self._paused = False
            self._relay.release_input()

    def _begin_program_line(self) -> None:
        """The first key typed for what runs: the line starts after what it printed last."""
        reader = self._reader
        secret = (reader is not None and reader.secret) or self._tail.password_prompt
        if self._statement:
            self._relay.echo(CONTINUATION)
            prompt = CONTINUATION
        else:
            prompt = self._tail.row
        name = reader.name if reader is not None and reader.program is not None else "program"
        self._relay.echo(self.editor.begin(prompt, secret=secret, history=self._history(name)))

    def _read(self, count: int, secret: bool) -> None:
        """The editor read `count` keys: listeners (the recording) learn of them now."""
        handed_back = min(count, self._front)
        self._front -= handed_back
        count -= handed_back
        if count > 0:
            keys = bytes(self._unread[:count])
            del self._unread[:count]
            self._relay.input_read(b"*" * len(keys) if secret else keys)

    def _keys_to_full_screen(self) -> None:
        keys = self.editor.take_pending()
        self._read(len(keys), False)
        if not keys:
            return
        if self._full_screen_ok:
            self._relay.to_target(keys)
            return
        signals = bytes(b for b in keys if b in (0x03, 0x1A, 0x1C))
        if signals:
            self._relay.to_target(signals)

    def _enter_full_screen(self) -> None:
        reader = self._reader
        self.state = State.FULL_SCREEN
        self._full_screen_ok = reader is not None and reader.full_screen_ok
        self.editor.cancel()  # a line being typed for the program is dropped, unsent
        self._soon(self._full_screen_began)

    def _full_screen_began(self) -> None:
        if self.state is not State.FULL_SCREEN:
            return
        reader = self._reader
        if not self._full_screen_ok and not self._told_full_screen:
            self._told_full_screen = True
            name = reader.name if reader is not None else "the program"
            self._relay.echo(
                f"\r\nbastion: {name} took the whole screen and the bastion cannot follow it: "
                "keys are not passed (Ctrl-C, Ctrl-Z and Ctrl-\\ are)\r\n".encode()
            )
        self._pump()

    def _event(self, event: Submitted | Signal) -> None:
        if isinstance(event, Submitted):
            self._submitted(event)
            return
        key = SIGNAL_KEYS[event.key]
        if self.state is State.PROMPT:
            if event.key == "interrupt":
                self._relay.to_target(CANCEL_LINE)
                self.state = State.SYNCING  # the shell drops the line and prompts again
            elif event.key == "eof":
                self.editor.cancel()
                self._relay.echo(PASTE_OFF)
                self._relay.to_target(END_OF_INPUT)
                self.state = State.RUNNING
            else:
                self._relay.echo(b"\x07")  # the shell at its prompt has nothing to suspend
            return
        self.editor.cancel()
        self._statement.clear()
        self._relay.to_target(key)

    def _submitted(self, event: Submitted) -> None:
        if self.state is State.PROMPT:
            self._relay.echo(self.editor.finish())
            if not event.text.strip():
                self._relay.to_target(b"\n")  # nothing to decide: the shell prompts again
                self.state = State.RUNNING
                return
            self._decide(TypedLine(event.text, None))
            return
        reader = self._reader or Reader("")  # RUNNING: always somebody's input, known or not
        if event.secret:
            self._relay.echo(self.editor.finish())
            self._decide(TypedLine(event.text, reader, secret=True))
            return
        program = reader.program
        if program is not None and program.reads == "sql":
            self._statement.append(event.text)
            if not statement_complete(program, self._statement):
                self._relay.echo(self.editor.finish())
                self._begin_program_line()  # the next line continues the statement
                return
            text = "\n".join(self._statement)
            self._statement.clear()  # it is the decision's now
        else:
            text = event.text
        # A readline program ends the line itself when it reads it; a plain reader does not.
        own_newline = program is not None and program.own_newline
        self._relay.echo(self.editor.finish(newline=not own_newline))
        self._decide(TypedLine(text, reader))

    # --- decisions ------------------------------------------------------------------------

    def _decide(self, line: TypedLine) -> None:
        self._deciding_epoch = self._epoch
        self._deciding = asyncio.ensure_future(self._decided(line, self._epoch))

    async def _decided(self, line: TypedLine, epoch: int) -> None:
        if line.reader is not None and not line.reader.understands_input and not line.secret:
            deadline = time.monotonic() + TYPE_AHEAD_WAIT
            while self._epoch == epoch and time.monotonic() < deadline and not self._closed:
                await asyncio.sleep(0.01)
            if self._epoch != epoch:  # the shell prompted: typed ahead for it
                self._deciding = None
                self._decided_too_late(line, LineDecision(False, None), cancelled=False)
                if self.state is State.PROMPT and not self.editor.active:
                    self._at_prompt()
                return
        try:
            decision = await self._session.decide_line(line)
        except asyncio.CancelledError:
            raise
        except Exception:  # fail closed
            log.exception("deciding a shell line failed; not sending it")
            decision = LineDecision(False, "bastion: internal error while deciding this line")
        self._deciding = None
        if self._closed:
            return
        cancelled = not decision.allowed and self.editor.interrupt_pending()
        if cancelled:
            self.editor.drop_interrupt()  # it cancelled this line's review: its job is done
        if epoch != self._epoch:
            self._decided_too_late(line, decision, cancelled)
        elif decision.allowed:
            self._send(line, decision)
        else:
            self._refused(line, decision)
        if self.state is State.PROMPT and not self.editor.active:
            self._at_prompt()
        self._pump()

    def _decided_too_late(self, line: TypedLine, decision: LineDecision, cancelled: bool) -> None:
        """The shell prompted again while the line was decided (the program it was for ended)."""
        self._statement.clear()
        if line.reader is None:  # decided for the shell, which is still the shell
            if not decision.allowed:
                self._refused(line, decision)
            elif self.state is State.PROMPT:
                self._send(line, decision)
            else:
                self._ready = (line, decision)  # sent at the next prompt
            return
        if cancelled or line.secret:
            return
        self._handed_back += line.text.replace("\n", "\r").encode("utf-8") + b"\r"

    def _send(self, line: TypedLine, decision: LineDecision) -> None:
        self._session.line_sent(line, decision)  # what it sets up counts from now on
        if line.reader is None:
            self._ready = None
            self._reader = decision.reader or Reader(line.text)
            self._line_running = True
            self._told_full_screen = False
            self._relay.to_target(line.text.encode("utf-8") + b"\n")
            self.state = State.RUNNING
            return
        reader = line.reader
        if reader.program is not None and reader.program.one_line:
            self._reader = Reader(reader.line)  # done reading: what comes next is the shell's
        for text in line.text.split("\n"):
            self._relay.to_target(text.encode("utf-8") + b"\r")
        self._statement.clear()
        self._answer_due = reader.program is not None and reader.program.own_newline

    def _refused(self, line: TypedLine, decision: LineDecision) -> None:
        self._statement.clear()
        program = line.reader.program if line.reader is not None else None
        if program is not None and program.own_newline and not line.secret:
            self._relay.echo(b"\r\n")  # the line was left open for the program's own newline
        if decision.message:
            self._relay.echo(decision.message.encode("utf-8", "replace") + b"\r\n")
        if line.reader is None and self.state is State.PROMPT:
            self._relay.echo(self._prompt)
            self._relay.echo(self.editor.begin(self._prompt, history=self._history("shell")))
        elif self.state is State.RUNNING:
            self._relay.echo(self._tail.row)  # the program's prompt, drawn again

    # --- helpers -------------------------------------------------------------------------

    def _history(self, name: str) -> History:
        return self._histories.setdefault(name, History())

    def _soon(self, callback: Callable[[], None]) -> None:
        """After the output being read now has been sent (the drawing goes behind it)."""
        asyncio.get_running_loop().call_soon(callback)


class ShellOutput:
    """The relay's output transform for a shell: this session's marks out, then masking."""

    def __init__(self, gate: ShellGate, inner: _Transform | None) -> None:
        self._gate = gate
        self._inner = inner
        self._last_feed = 0.0

    def feed(self, stream: Stream, data: bytes) -> bytes:
        self._last_feed = time.monotonic()
        if stream is Stream.STDOUT:
            data = self._gate.filter_output(data)
        return self._inner.feed(stream, data) if self._inner is not None else data

    def flush(self) -> list[tuple[Stream, bytes]]:
        released: list[tuple[Stream, bytes]] = []
        held = self._gate.flush_output()
        if held:
            inner = self._inner
            released.append((Stream.STDOUT, inner.feed(Stream.STDOUT, held) if inner else held))
        if self._inner is not None:
            released += self._inner.flush()
        return released

    def release(self) -> list[tuple[Stream, bytes]]:
        """What is due now: output held for a possible mark once its time passed, then the
        masker's own."""
        released: list[tuple[Stream, bytes]] = []
        due = self._gate.release_at(self._last_feed)
        if due is not None and due <= time.monotonic():
            held = self._gate.flush_output()
            if held:
                inner = self._inner
                out = inner.feed(Stream.STDOUT, held) if inner is not None else held
                released.append((Stream.STDOUT, out))
        if self._inner is not None:
            released += self._inner.release()
        return released

    def release_at(self) -> float | None:
        times = [self._gate.release_at(self._last_feed)]
        if self._inner is not None:
            times.append(self._inner.release_at())
        due = [t for t in times if t is not None]
        return min(due) if due else None


class _Transform(Protocol):
    def feed(self, stream: Stream, data: bytes) -> bytes: ...
    def flush(self) -> list[tuple[Stream, bytes]]: ...
    def release(self) -> list[tuple[Stream, bytes]]: ...
    def release_at(self) -> float | None: ...
