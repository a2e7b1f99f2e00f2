"""The shell gate forwards keys at once, holds Enter for a decision, and fails closed."""

from __future__ import annotations

import asyncio
import time

from bastion.relay.gate import CANCEL_LINE, LineDecision, ShellGate


class Harness:
    """Stands in for the relay (the gate's only collaborator) and the rules."""

    def __init__(self, decisions: list[LineDecision] | None = None, fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.submitted: list[list] = []
        self.notes: list[str] = []
        self.decisions = list(decisions or [])
        self.fail = fail
        self.last_output = 0.0
        self.held = False
        self.gate = ShellGate(self, self.decide, width=80, height=24)

    def to_target(self, data: bytes) -> None:
        self.sent.append(data)
        self.last_output = time.monotonic() + 0.001  # the target echoes at once

    def say_on_terminal(self, message: str) -> None:
        self.notes.append(message)

    def hold_input(self) -> None:
        self.held = True

    def release_input(self) -> None:
        self.held = False

    async def decide(self, lines: list) -> LineDecision:
        self.submitted.append(lines)
        if self.fail:
            raise RuntimeError("boom")
        return self.decisions.pop(0) if self.decisions else LineDecision(True, None)


async def settle() -> None:
    for _ in range(40):
        await asyncio.sleep(0.02)


def test_keys_pass_and_enter_waits_for_the_decision() -> None:
    async def run() -> Harness:
        h = Harness([LineDecision(True, None)])
        h.gate.input(b"ls -l\r")
        assert h.sent == [b"ls -l"]  # the Enter is held
        await settle()
        return h

    h = asyncio.run(run())
    assert h.sent == [b"ls -l", b"\r"] and len(h.submitted) == 1


def test_denied_line_is_cancelled_and_later_input_follows_in_order() -> None:
    async def run() -> Harness:
        h = Harness(
            [LineDecision(False, "bastion: denied by rule x: no"), LineDecision(True, None)]
        )
        h.gate.input(b"cat /etc/shadow\r")
        h.gate.input(b"id\r")  # typed while the first line is being decided
        await settle()
        return h

    h = asyncio.run(run())
    assert h.sent == [b"cat /etc/shadow", CANCEL_LINE, b"id", b"\r"]
    assert h.notes == ["bastion: denied by rule x: no"]


def test_every_newline_is_decided_even_inside_a_paste() -> None:
    """bash does not treat ESC ESC[200~ as a paste: the gate must not trust paste markers."""

    async def run() -> Harness:
        h = Harness([LineDecision(True, None), LineDecision(False, "no")])
        h.gate.input(b"\x1b\x1b[200~echo one\nrm -rf /x\x1b[201~\r")
        await settle()
        return h

    h = asyncio.run(run())
    assert len(h.submitted) == 2
    assert h.sent[-1] == CANCEL_LINE


def test_a_failing_decision_denies() -> None:
    async def run() -> Harness:
        h = Harness(fail=True)
        h.gate.input(b"true\r")
        await settle()
        return h

    h = asyncio.run(run())
    assert h.sent == [b"true", CANCEL_LINE]
    assert h.notes and "internal error" in h.notes[0]
