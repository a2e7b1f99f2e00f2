"""The relay with plain ends and a debug listener: no SSH, no sockets."""

from __future__ import annotations

import asyncio
import doctest
import time

import pytest

import bastion.relay.admission
import bastion.relay.flow
import bastion.relay.listeners
from bastion.relay.events import Exit, Input, Output, Resize, Stream
from bastion.relay.listeners import DebugListener, Listener, Listeners
from bastion.relay.relay import EXIT_UPSTREAM_FAILED, MAX_PENDING_INPUT, Relay


class AgentEnd:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.eof = False
        self.status: int | None = None
        self.signal: str | None = None
        self.reading = True

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def write_stderr(self, data: bytes) -> None:
        self.err.append(data)

    def write_eof(self) -> None:
        self.eof = True

    def exit(self, status: int) -> None:
        self.status = status

    def exit_with_signal(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.signal = signal

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class TargetEnd:
    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.eof = False
        self.closed = False
        self.reading = True
        self.sizes: list[tuple[int, int]] = []

    def write(self, data: bytes) -> None:
        self.got.append(data)

    def write_eof(self) -> None:
        self.eof = True

    def change_terminal_size(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.sizes.append((width, height))

    def send_signal(self, signal: str) -> None: ...

    def send_break(self, msec: int) -> None: ...

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True


def make(pty: bool = False, **kwargs) -> tuple[Relay, AgentEnd, DebugListener]:
    agent = AgentEnd()
    listeners = Listeners()
    debug = DebugListener()
    listeners.attach(debug)
    return Relay(agent, listeners, pty=pty, **kwargs), agent, debug


async def turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_module_examples_hold() -> None:
    for module in (bastion.relay.flow, bastion.relay.listeners, bastion.relay.admission):
        assert doctest.testmod(module).failed == 0


def test_output_of_one_loop_turn_leaves_as_one_write() -> None:
    async def run() -> tuple[AgentEnd, DebugListener]:
        relay, agent, debug = make()
        for chunk in (b"a" * 10, b"b" * 10, b"c" * 10):
            relay.from_target(chunk, Stream.STDOUT)
        await turn()
        return agent, debug

    agent, debug = asyncio.run(run())
    assert agent.out == [b"a" * 10 + b"b" * 10 + b"c" * 10]
    outputs = [e for e in debug.events if isinstance(e, Output)]
    assert len(outputs) == 1 and outputs[0].raw == outputs[0].data


def test_stderr_and_stdout_keep_their_order_and_streams() -> None:
    async def run() -> AgentEnd:
        relay, agent, _ = make()
        relay.from_target(b"out1", Stream.STDOUT)
        relay.from_target(b"err", Stream.STDERR)
        relay.from_target(b"out2", Stream.STDOUT)
        await turn()
        return agent

    agent = asyncio.run(run())
    assert agent.out == [b"out1", b"out2"] and agent.err == [b"err"]


def test_input_before_the_target_waits_then_flows_in_order() -> None:
    async def run() -> tuple[TargetEnd, AgentEnd, DebugListener]:
        relay, agent, debug = make()
        relay.from_agent(b"one")
        relay.from_agent(b"two")
        relay.agent_eof()
        target = TargetEnd()
        relay.attach_target(target)
        relay.from_agent(b"late")  # after EOF nothing more comes in practice; order still kept
        return target, agent, debug

    target, agent, debug = asyncio.run(run())
    assert target.got == [b"one", b"two", b"late"] and target.eof
    assert [e.data for e in debug.events if isinstance(e, Input)] == [b"one", b"two", b"late"]


def test_early_input_reaches_listeners_attached_before_the_target_opens() -> None:
    """Exec stdin often arrives while the session row is written: a listener attached
    after it arrived (the recording, the accounting) still sees it."""
    relay = Relay(AgentEnd(), Listeners(), pty=False)
    relay.from_agent(b"id\n")
    late = DebugListener()
    relay.listeners.attach(late)
    relay.attach_target(TargetEnd())
    assert [e.data for e in late.events if isinstance(e, Input)] == [b"id\n"]


def test_too_much_early_input_pauses_the_agent_until_the_target_is_ready() -> None:
    async def run() -> tuple[bool, bool]:
        relay, agent, _ = make()
        relay.from_agent(b"x" * (MAX_PENDING_INPUT + 1))
        paused = not agent.reading
        relay.attach_target(TargetEnd())
        return paused, agent.reading

    paused, reading_after = asyncio.run(run())
    assert paused and reading_after


def test_back_pressure_reasons_do_not_resume_each_other() -> None:
    async def run() -> list[bool]:
        relay, agent, _ = make()
        relay.attach_target(TargetEnd())
        states = []
        relay.target_full()
        relay.hold_input()  # the shell gate holds input too
        relay.target_drained()
        states.append(agent.reading)  # still held by the gate
        relay.release_input()
        states.append(agent.reading)
        return states

    assert asyncio.run(run()) == [False, True]


def test_a_full_agent_pauses_reading_from_the_target() -> None:
    async def run() -> tuple[bool, bool]:
        relay, _, _ = make()
        target = TargetEnd()
        relay.agent_full()  # before the target exists: applied when it does
        relay.attach_target(target)
        paused = not target.reading
        relay.agent_drained()
        return paused, target.reading

    assert asyncio.run(run()) == (True, True)


class BrokenTransform:
    def feed(self, stream: Stream, data: bytes) -> bytes:
        raise RuntimeError("boom")

    def flush(self) -> list[tuple[Stream, bytes]]:
        return []

    def release(self) -> list[tuple[Stream, bytes]]:
        return []

    def release_at(self) -> float | None:
        return None


def test_a_transform_that_raises_closes_the_channel_and_sends_nothing() -> None:
    async def run() -> tuple[AgentEnd, TargetEnd, DebugListener]:
        relay, agent, debug = make()
        target = TargetEnd()
        relay.attach_target(target)
        relay.transform = BrokenTransform()
        relay.from_target(b"secret AKIAIOSFODNN7EXAMPLE\n", Stream.STDOUT)
        await turn()
        relay.from_target(b"more\n", Stream.STDOUT)
        await turn()
        return agent, target, debug

    agent, target, debug = asyncio.run(run())
    assert agent.out == []
    assert agent.status == EXIT_UPSTREAM_FAILED and target.closed
    assert b"output transform failed (RuntimeError)" in b"".join(agent.err)
    assert not any(isinstance(e, Output) and b"AKIA" in e.data for e in debug.events)
    exits = [e for e in debug.events if isinstance(e, Exit)]
    assert len(exits) == 1 and exits[0].status == EXIT_UPSTREAM_FAILED


class HoldTail:
    """Holds back everything after the last newline until released."""

    def __init__(self, hold: float) -> None:
        self.held = b""
        self.hold = hold
        self.last = 0.0

    def feed(self, stream: Stream, data: bytes) -> bytes:
        data = self.held + data
        cut = data.rfind(b"\n") + 1
        self.held = data[cut:]
        self.last = time.monotonic()
        return data[:cut]

    def flush(self) -> list[tuple[Stream, bytes]]:
        held, self.held = self.held, b""
        return [(Stream.STDOUT, held)] if held else []

    def release(self) -> list[tuple[Stream, bytes]]:
        due = self.release_at()
        return self.flush() if due is not None and due <= time.monotonic() else []

    def release_at(self) -> float | None:
        return self.last + self.hold if self.held else None


def test_held_back_output_is_released_after_the_pause() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        relay, agent, _ = make()
        relay.transform = HoldTail(0.05)
        relay.from_target(b"line\npart", Stream.STDOUT)
        await turn()
        before = list(agent.out)
        await asyncio.sleep(0.15)
        return before, agent.out

    before, after = asyncio.run(run())
    assert before == [b"line\n"] and after == [b"line\n", b"part"]


def test_a_drawing_behind_held_output_goes_out_when_that_output_is_released() -> None:
    """The bastion's own message waits behind output the masker holds, then goes, and the
    output that came after it follows: no EOF or prompt is needed to send them."""

    async def run() -> list[bytes]:
        relay, agent, _ = make()
        relay.transform = HoldTail(0.05)
        relay.from_target(b"screen\npart", Stream.STDOUT)
        await turn()
        relay.echo(b"[notice]")
        relay.from_target(b" more\n", Stream.STDOUT)
        await asyncio.sleep(0.2)
        return agent.out

    assert b"".join(asyncio.run(run())) == b"screen\npart[notice] more\n"


def test_eof_releases_what_is_held_then_ends_the_agent_stream() -> None:
    async def run() -> AgentEnd:
        relay, agent, _ = make()
        relay.transform = HoldTail(10.0)
        relay.from_target(b"tail", Stream.STDOUT)
        relay.target_eof()
        return agent

    agent = asyncio.run(run())
    assert agent.out == [b"tail"] and agent.eof


def test_exit_status_and_signal_reach_the_agent_once() -> None:
    async def run() -> tuple[AgentEnd, DebugListener]:
        relay, agent, debug = make()
        relay.attach_target(TargetEnd())
        relay.target_exit_status(3)
        relay.target_closed(None, "web1")
        relay.agent_closed(None)
        return agent, debug

    agent, debug = asyncio.run(run())
    assert agent.status == 3
    assert [e for e in debug.events if isinstance(e, Exit)] == [Exit(3, None, None)]


def test_a_lost_target_tells_the_agent_and_exits_255() -> None:
    async def run() -> AgentEnd:
        relay, agent, _ = make(pty=False)
        relay.attach_target(TargetEnd())
        relay.target_closed(ConnectionResetError("reset"), "web1")
        return agent

    agent = asyncio.run(run())
    assert agent.status == 255 and agent.err == [b"bastion: connection to web1 lost\n"]


def test_the_bastions_lines_end_as_the_terminal_expects() -> None:
    async def run() -> tuple[AgentEnd, AgentEnd]:
        plain, agent_plain, _ = make(pty=False)
        plain.finish(126, "bastion: denied by rule x: no")
        term, agent_term, _ = make(pty=True)
        term.finish(126, "bastion: denied by rule x: no")
        return agent_plain, agent_term

    plain, term = asyncio.run(run())
    assert plain.err == [b"bastion: denied by rule x: no\n"] and plain.status == 126
    assert term.err == [b"bastion: denied by rule x: no\r\n"]


def test_resize_is_forwarded_and_announced() -> None:
    async def run() -> tuple[TargetEnd, DebugListener]:
        relay, _, debug = make(pty=True)
        target = TargetEnd()
        relay.attach_target(target)
        relay.resize(120, 40)
        return target, debug

    target, debug = asyncio.run(run())
    assert target.sizes == [(120, 40)] and Resize(120, 40) in debug.events


class Exploding(Listener):
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    def on_output(self, event: Output) -> None:
        self.calls += 1
        raise OSError("disk full")


def test_a_failing_listener_is_turned_off_and_the_channel_goes_on() -> None:
    failures: list[tuple[str, str]] = []

    async def run() -> tuple[AgentEnd, DebugListener, Exploding]:
        agent = AgentEnd()
        listeners = Listeners(on_failure=lambda lst, exc: failures.append((lst.name, str(exc))))
        exploding, debug = Exploding(), DebugListener()
        listeners.attach(exploding)
        listeners.attach(debug)
        relay = Relay(agent, listeners, pty=False)
        relay.from_target(b"one", Stream.STDOUT)
        await turn()
        relay.from_target(b"two", Stream.STDOUT)
        await turn()
        return agent, debug, exploding

    agent, debug, exploding = asyncio.run(run())
    assert agent.out == [b"one", b"two"]
    assert exploding.calls == 1 and failures == [("exploding", "disk full")]
    assert [e.data for e in debug.events if isinstance(e, Output)] == [b"one", b"two"]


def test_listeners_only_receive_the_events_they_override() -> None:
    class InputsOnly(Listener):
        def __init__(self) -> None:
            self.seen: list[object] = []

        def on_input(self, event: Input) -> None:
            self.seen.append(event)

    listeners = Listeners()
    only = InputsOnly()
    listeners.attach(only)
    listeners.emit(Output(b"x", Stream.STDOUT, b"x"))
    listeners.emit(Input(b"y"))
    assert only.seen == [Input(b"y")]
    listeners.detach(only)
    listeners.emit(Input(b"z"))
    assert only.seen == [Input(b"y")]


@pytest.mark.parametrize("closed_by", ["agent", "finish"])
def test_nothing_moves_after_the_channel_closed(closed_by: str) -> None:
    async def run() -> tuple[AgentEnd, TargetEnd]:
        relay, agent, _ = make()
        target = TargetEnd()
        relay.attach_target(target)
        if closed_by == "agent":
            relay.agent_closed(None)
        else:
            relay.finish(126, "bye")
        relay.from_agent(b"late input")
        relay.from_target(b"late output", Stream.STDOUT)
        await turn()
        return agent, target

    agent, target = asyncio.run(run())
    assert target.got == [] and agent.out == []
