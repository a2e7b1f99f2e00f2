"""Holds the Enter key in an interactive shell until the line it submits is decided.

Keystrokes pass straight through, so typing, editing and completion feel
normal. At Enter the gate stops: it waits briefly for the target's echo of
what was typed to arrive (the terminal model reads the line off the
screen), asks for a decision, and only then forwards the Enter. A denied
line is cancelled on the target with Ctrl-C, which makes the shell drop the
line and print a new prompt, and the agent sees why. Input typed while a
decision is pending waits behind it, in order.

The gate owns the terminal model that reads the line off the screen: it
feeds it the keys it passes and, as a listener, the target's own output
(before masking, so masking cannot hide part of a command from the rules).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bastion.relay.events import Output, Resize
from bastion.relay.listeners import Listener
from recorder import EnteredLine, TerminalModel

log = logging.getLogger("bastion.shell_gate")

ENTER_KEYS = (b"\r", b"\n")
CANCEL_LINE = b"\x03"  # Ctrl-C: the shell discards the line being edited
# The echo of typed characters usually follows within a few ms on a LAN.
ECHO_QUIET = 0.03
ECHO_MAX_WAIT = 0.5
MAX_HELD = 1 << 20


@dataclass(frozen=True)
class LineDecision:
    allowed: bool
    message: str | None  # shown to the agent when not allowed


class GateRelay(Protocol):
    """What the gate needs of the relay."""

    last_output: float

    def to_target(self, data: bytes) -> None: ...
    def say_on_terminal(self, message: str) -> None: ...
    def hold_input(self) -> None: ...
    def release_input(self) -> None: ...


LineDecider = Callable[[list[EnteredLine]], Awaitable[LineDecision]]


class ShellGate(Listener):
    name = "shell-gate"

    def __init__(self, relay: GateRelay, decide: LineDecider, *, width: int, height: int) -> None:
        self._relay = relay
        self._decide_lines = decide
        self.model = TerminalModel(width, height)
        self._held = bytearray()
        self._busy = False
        self._paused = False
        self._closed = False
        self._last_forward = 0.0
        self._deciding: asyncio.Task[None] | None = None

    # --- as a listener: the screen the lines are read from ----------------------------

    def on_output(self, event: Output) -> None:
        if event.raw:
            self.model.feed_output(event.raw)

    def on_resize(self, event: Resize) -> None:
        self.model.resize(event.width, event.height)

    @property
    def interrupted(self) -> bool:
        """Ctrl-C typed while a line waits for its decision (it cancels a held review)."""
        return self._busy and CANCEL_LINE in self._held

    def input(self, data: bytes) -> None:
        if self._closed:
            return
        self._held += data
        if len(self._held) > MAX_HELD and not self._paused:
            self._paused = True
            self._relay.hold_input()
        if not self._busy:
            self._drain()

    def close(self) -> None:
        self._closed = True
        if self._deciding is not None:
            self._deciding.cancel()

    def _drain(self) -> None:
        """Forward everything up to the next Enter; hand that Enter to a decision.

        Every CR and LF is an Enter here, including those inside a bracketed
        paste: the shell, not the gate, decides what a paste marker means, and
        `ESC ESC[200~` is not a paste to bash. A multi-line paste into bash is
        therefore decided line by line and, its echo withheld until the paste
        ends, read as uncertain and refused: fail closed.
        """
        while self._held and not self._closed:
            cut = min((i for i in (self._held.find(k) for k in ENTER_KEYS) if i >= 0), default=-1)
            if cut < 0:
                self._pass(bytes(self._held))
                self._held.clear()
                break
            if cut:
                self._pass(bytes(self._held[:cut]))
            enter = bytes(self._held[cut : cut + 1])
            del self._held[: cut + 1]
            self._busy = True
            self._deciding = asyncio.ensure_future(self._decide(enter))
            return
        if self._paused and not self._held:
            self._paused = False
            self._relay.release_input()

    def _pass(self, data: bytes) -> None:
        self.model.feed_input(data)  # no Enter in `data`: no line comes out
        self._forward(data)

    def _forward(self, data: bytes) -> None:
        self._relay.to_target(data)
        self._last_forward = time.monotonic()

    async def _decide(self, enter: bytes) -> None:
        try:
            await self._wait_for_echo()
            decision = await self._decide_lines(self.model.feed_input(enter))
        except Exception:  # fail closed
            log.exception("deciding a shell line failed; cancelling it")
            decision = LineDecision(False, "bastion: internal error while deciding this line")
        if self._closed:
            return
        if decision.allowed:
            self._forward(enter)
        else:
            self._forward(CANCEL_LINE)
            if decision.message:
                self._relay.say_on_terminal(decision.message)
            # A Ctrl-C typed while waiting meant "cancel this line": it has been.
            cancel = self._held.find(CANCEL_LINE)
            if cancel >= 0:
                del self._held[cancel : cancel + 1]
        self._busy = False
        self._drain()

    async def _wait_for_echo(self) -> None:
        """Until output that followed the last keys sent has been quiet for a moment.

        Keys that are never echoed (a password prompt) cost the full wait.
        """
        deadline = time.monotonic() + ECHO_MAX_WAIT
        while time.monotonic() < deadline:
            last_output = self._relay.last_output
            quiet_for = time.monotonic() - last_output
            if last_output >= self._last_forward and quiet_for >= ECHO_QUIET:
                return
            await asyncio.sleep(max(0.005, ECHO_QUIET - quiet_for))
