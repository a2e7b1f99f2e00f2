"""The shell gate's states, driven with plain bytes: a scripted shell that speaks the marks.

The fake shell below stands in for the target's bash (the real one is in
tests/e2e/test_line_ownership.py): it answers the setup line and each sync
line the way the bastion's prompt function does, and runs "commands" from
a script. No SSH here; the relay and the session are small stand-ins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bastion.relay import gate as gate_module
from bastion.relay.gate import LineDecision, ShellGate, State, TypedLine
from bastion.relay.shell_start import ShellStart
from bastion.relay.terminal_programs import PROGRAMS, Reader

NONCE = "0123abcd"
START = ShellStart(nonce=NONCE)


def mark(kind: str, *fields: str) -> bytes:
    return ("\x1b]133;" + ";".join((kind, *fields, f"bastion={NONCE}")) + "\x07").encode()


class FakeShell:
    """Answers like the bastion's bash: D after each command, then A/prompt/B after the sync."""

    def __init__(self, gate_output: Callable[[bytes], None]) -> None:
        self.output = gate_output
        self.received = bytearray()
        self.commands: list[str] = []
        self.programs: dict[str, Callable[[str], tuple[bytes, int | None]]] = {}
        self.running: str | None = None  # a program reading lines
        self.fed: list[str] = []
        self.prompt = b"user@web1:~$ "

    def receive(self, data: bytes) -> None:
        self.received += data
        while b"\n" in self.received or b"\r" in self.received:
            cut = min(i for i in (self.received.find(b"\n"), self.received.find(b"\r")) if i >= 0)
            line = bytes(self.received[:cut]).decode()
            del self.received[: cut + 1]
            self._line(line)
        for key in (b"\x03", b"\x04"):
            if key in self.received:
                self.received = self.received.replace(key, b"")
                self._later(b"\r\n" + mark("D", "130"))
                self.running = None

    def _line(self, line: str) -> None:
        if line.startswith("__bastion_prompt()"):
            self._later(b"bash-5.2$ " + mark("D", "0"))
        elif line.startswith(f"{NONCE}:"):
            token = line.split(":", 1)[1]
            self._later(mark("A", f"t={token}") + self.prompt + mark("B"))
        elif self.running is not None:
            self.fed.append(line)
            out, status = self.programs[self.running](line)
            if status is not None:
                self.running = None
                out += mark("D", str(status))
            self._later(out)
        elif line:
            self.commands.append(line)
            name = line.split()[0]
            if name in self.programs:
                self.running = name
                self._later(self.programs[name]("")[0])
            else:
                self._later(f"ran {line}\r\n".encode() + mark("D", "0"))
        else:
            self._later(mark("D", "0"))

    def _later(self, data: bytes) -> None:
        asyncio.get_running_loop().call_soon(self.output, data)


class Harness:
    def __init__(self, decide: Callable[[TypedLine], LineDecision] | None = None) -> None:
        self.screen = bytearray()
        self.input_events = True
        self.eof_to_agent = True
        self.recorded = bytearray()
        self.decisions: list[TypedLine] = []
        self.statuses: list[int | None] = []
        self.sent_lines: list[str] = []
        self.failed: list[str] = []
        self.policy = decide or (lambda line: LineDecision(True, None, Reader(line.text)))
        self.hold: asyncio.Event | None = None
        self.shell = FakeShell(self.output)
        self.gate = ShellGate(self, self, START, width=80)

    # the relay
    def to_target(self, data: bytes) -> None:
        self.shell.receive(data)

    def echo(self, data: bytes) -> None:
        self.screen += data

    def input_read(self, data: bytes) -> None:
        self.recorded += data

    def release_held(self) -> None: ...
    def hold_input(self) -> None: ...
    def release_input(self) -> None: ...

    def output(self, data: bytes) -> None:
        self.screen += self.gate.filter_output(data)

    # the session
    async def decide_line(self, line: TypedLine) -> LineDecision:
        self.decisions.append(line)
        if self.hold is not None:
            await self.hold.wait()
        return self.policy(line)

    def line_sent(self, line: TypedLine, decision: LineDecision) -> None:
        self.sent_lines.append(line.text)

    def line_ended(self, status: int | None) -> None:
        self.statuses.append(status)

    def shell_not_started(self, reason: str) -> None:
        self.failed.append(reason)


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def run(test: Callable[[Harness], object], **kwargs: object) -> Harness:
    async def go() -> Harness:
        h = Harness(**kwargs)  # type: ignore[arg-type]
        h.gate.begin()
        await settle()
        result = test(h)
        if asyncio.iscoroutine(result):
            await result
        await settle()
        h.gate.close()
        return h

    return asyncio.run(go())


def test_the_setup_line_goes_first_and_its_output_is_hidden() -> None:
    def test(h: Harness) -> None:
        assert h.gate.state is State.PROMPT
        assert b"bash-5.2$" not in h.screen and h.screen.startswith(b"user@web1:~$ ")
        assert NONCE.encode() not in h.screen

    run(test)


def test_keys_typed_before_the_prompt_wait_and_are_then_edited() -> None:
    async def test(h: Harness) -> None:
        pass

    async def go() -> Harness:
        h = Harness()
        h.gate.input(b"echo hi\r")  # before the target even answered
        h.gate.begin()
        await settle()
        return h

    h = asyncio.run(go())
    assert h.shell.commands == ["echo hi"] and [d.text for d in h.decisions] == ["echo hi"]


def test_an_allowed_line_is_sent_whole_and_its_exit_status_comes_back() -> None:
    async def test(h: Harness) -> None:
        h.gate.input(b"ls -lx\x7fa\r")
        await settle()
        assert h.shell.commands == ["ls -la"]
        assert h.recorded == b"ls -lx\x7fa\r"  # keys are recorded as typed, once
        assert h.statuses == [0]
        assert h.gate.state is State.PROMPT

    run(test)


def test_a_refused_line_reaches_nothing_and_the_prompt_is_drawn_again() -> None:
    def deny(line: TypedLine) -> LineDecision:
        if "shadow" in line.text:
            return LineDecision(False, "bastion: denied by rule credential-read: no")
        return LineDecision(True, None, Reader(line.text))

    async def test(h: Harness) -> None:
        h.gate.input(b"cat /etc/shadow\r")
        await settle()
        assert h.shell.commands == [] and h.shell.received == b""
        assert b"denied by rule credential-read" in h.screen
        assert h.screen.endswith(b"user@web1:~$ " + b"\x1b[?2004h")
        h.gate.input(b"echo ok\r")
        await settle()
        assert h.shell.commands == ["echo ok"]

    run(test, decide=deny)


def test_keys_typed_while_deciding_wait_and_ctrl_c_cancels_the_hold() -> None:
    async def test(h: Harness) -> None:
        h.hold = asyncio.Event()
        h.gate.input(b"sleep 1\r")
        await settle()
        h.gate.input(b"id\r")  # typed while the first is being decided
        await settle()
        assert len(h.decisions) == 1 and not h.gate.interrupted
        h.gate.input(b"\x03")
        assert h.gate.interrupted
        h.hold.set()

    h = run(test, decide=lambda line: LineDecision(False, "held, then cancelled"))
    assert h.shell.commands == []


def test_ctrl_c_at_the_prompt_clears_the_line_and_the_shell_prompts_again() -> None:
    async def test(h: Harness) -> None:
        h.gate.input(b"half typed\x03")
        await settle()
        assert h.decisions == [] and h.gate.state is State.PROMPT
        assert h.screen.count(b"user@web1:~$ ") == 2  # a fresh prompt from the shell

    run(test)


def test_lines_typed_into_a_program_are_decided_as_its_input() -> None:
    sqlite = Reader("sqlite3 db", PROGRAMS["sqlite3"], ("sqlite3", "db"))

    def policy(line: TypedLine) -> LineDecision:
        if line.reader is None:
            return LineDecision(True, None, sqlite if line.text.startswith("sqlite3") else None)
        if ".shell" in line.text:
            return LineDecision(False, "bastion: denied by rule sql-shell-escape: no")
        return LineDecision(True, None)

    async def test(h: Harness) -> None:
        def sqlite3(line: str) -> tuple[bytes, int | None]:
            if line == ".quit":
                return b"", 0
            return (line.encode() + b"\r\nsqlite> "), None

        h.shell.programs["sqlite3"] = sqlite3
        h.gate.input(b"sqlite3 db\r")
        await settle()
        assert h.gate.state is State.RUNNING
        h.gate.input(b".shell cat /etc/shadow\r")
        await settle()
        assert h.shell.fed == []  # refused: nothing left behind in sqlite's buffer
        h.gate.input(b"select\r")
        await settle()
        assert h.shell.fed == []  # not a whole statement yet: nothing sent
        h.gate.input(b"1;\r")
        await settle()
        assert h.shell.fed == ["select", "1;"]
        assert [d.text for d in h.decisions if d.reader] == [".shell cat /etc/shadow", "select\n1;"]
        h.gate.input(b".quit\r")
        await settle()
        assert h.gate.state is State.PROMPT and h.statuses == [0]
        h.gate.input(b"echo ok\r")
        await settle()
        assert h.shell.commands[-1] == "echo ok" and h.decisions[-1].reader is None

    run(test, decide=policy)


def test_a_line_typed_ahead_of_a_quick_command_goes_to_the_shell() -> None:
    async def test(h: Harness) -> None:
        h.shell.programs["sleep"] = lambda line: (b"", None)
        h.gate.input(b"sleep 0.1\r")
        await settle()
        h.gate.input(b"echo next\r")  # typed ahead while sleep runs
        await asyncio.sleep(0.05)
        h.shell.running = None
        h.output(mark("D", "0"))  # sleep ended within the wait
        await asyncio.sleep(0.05)
        await settle()
        assert [(d.text, d.reader) for d in h.decisions][-1] == ("echo next", None)
        assert h.shell.commands[-1] == "echo next"

    run(test)


def test_a_held_line_for_a_program_that_ends_goes_to_the_shell(monkeypatch) -> None:
    monkeypatch.setattr(gate_module, "TYPE_AHEAD_WAIT", 0.02)

    async def test(h: Harness) -> None:
        h.shell.programs["sleep"] = lambda line: (b"", None)
        h.gate.input(b"sleep 5\r")
        await settle()
        h.hold = asyncio.Event()
        h.gate.input(b"echo next\r")  # decided as sleep's input after the wait: held
        await asyncio.sleep(0.05)
        assert h.decisions[-1].reader is not None and not h.gate.interrupted
        h.shell.running = None
        h.output(mark("D", "0"))  # sleep ended while the line was held
        await settle()
        assert h.gate.interrupted  # the held decision is for a program that is gone
        h.hold.set()
        await settle()
        h.hold = None
        await settle()
        assert h.decisions[-1].reader is None and h.decisions[-1].text == "echo next"
        assert h.shell.commands[-1] == "echo next"

    run(test, decide=lambda line: LineDecision(line.reader is None, "held", Reader(line.text)))


def test_a_password_prompt_makes_the_next_line_secret() -> None:
    async def test(h: Harness) -> None:
        h.shell.programs["sudo"] = lambda line: (
            (b"[sudo] password for deploy: ", None) if line == "" else (b"\r\nok\r\n", 0)
        )
        h.gate.input(b"sudo true\r")
        await settle()
        before = len(h.screen)
        h.gate.input(b"hunter2\r")
        await settle()
        assert b"hunter2" not in h.screen[before:] and b"hunter2" not in h.recorded
        assert h.recorded.endswith(b"*" * len(b"hunter2\r"))
        secret = [d for d in h.decisions if d.secret]
        assert secret and secret[0].text == "hunter2"
        assert h.shell.fed == ["hunter2"]

    reader = Reader("sudo true", PROGRAMS["sudo"], ("sudo", "true"), passwords=True)
    run(test, decide=lambda line: LineDecision(True, None, reader))


def test_a_full_screen_program_gets_raw_keys_only_when_it_is_known_safe() -> None:
    top = Reader("top", PROGRAMS["top"], ("top",))
    vim = Reader("vim", None, ("vim",))

    async def test(h: Harness) -> None:
        h.shell.programs["top"] = lambda line: (b"\x1b[?1049h", None)
        h.shell.programs["vim"] = lambda line: (b"\x1b[?1049h", None)
        h.gate.input(b"top\r")
        await settle()
        assert h.gate.state is State.FULL_SCREEN
        h.gate.input(b"q")
        assert h.shell.received.endswith(b"q")  # raw
        h.shell.received.clear()
        h.output(b"\x1b[?1049l" + mark("D", "0"))
        h.shell.running = None
        await settle()
        h.gate.input(b"vim\r")
        await settle()
        assert h.gate.state is State.FULL_SCREEN
        h.gate.input(b":!cat /etc/shadow\r")
        assert h.shell.received == b""  # nothing passes
        assert b"took the whole screen" in h.screen
        h.gate.input(b"\x1a")
        assert h.shell.received == b"\x1a"  # Ctrl-Z does

    run(test, decide=lambda line: LineDecision(True, None, top if line.text == "top" else vim))


def test_marks_with_another_nonce_are_output_and_do_nothing() -> None:
    async def test(h: Harness) -> None:
        h.shell.programs["cat"] = lambda line: (b"", None)
        h.gate.input(b"cat\r")
        await settle()
        forged = b"\x1b]133;D;0;bastion=feedbeef\x07\x1b]133;A;bastion=feedbeef;t=x\x07$ "
        h.output(forged)
        await settle()
        assert h.gate.state is State.RUNNING and forged in h.screen

    run(test)


def test_an_a_mark_with_a_wrong_token_is_ignored() -> None:
    async def test(h: Harness) -> None:
        h.shell.programs["cat"] = lambda line: (b"", None)
        h.gate.input(b"cat\r")
        await settle()
        h.output(mark("A", "t=guessed") + b"$ " + mark("B"))
        await settle()
        assert h.gate.state is State.RUNNING

    run(test)


def test_the_shell_ending_before_its_first_prompt_is_reported_by_the_session() -> None:
    async def go() -> Harness:
        h = Harness()
        h.shell.receive = lambda data: None  # type: ignore[method-assign]  # never answers
        h.gate.begin()
        await settle()
        return h

    h = asyncio.run(go())
    assert not h.gate.started and h.gate.state is State.STARTING


def test_a_failing_decision_sends_nothing() -> None:
    def boom(line: TypedLine) -> LineDecision:
        raise RuntimeError("boom")

    async def test(h: Harness) -> None:
        h.gate.input(b"true\r")
        await settle()
        assert h.shell.commands == [] and b"internal error" in h.screen

    run(test, decide=boom)


def test_several_lines_typed_at_once_each_run_once_in_order() -> None:
    async def test(h: Harness) -> None:
        h.gate.input(b"(exit 3)\rfalse\recho status\r")
        for _ in range(40):
            await asyncio.sleep(0.05)
            if len(h.shell.commands) >= 3:
                break
        await settle()
        assert h.shell.commands == ["(exit 3)", "false", "echo status"]
        assert [(d.text, d.reader) for d in h.decisions] == [
            ("(exit 3)", None),
            ("false", None),
            ("echo status", None),
        ]

    run(test)
