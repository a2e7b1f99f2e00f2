"""The terminal model reports the line entered in a shell, and doubts what it cannot trust."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from realshell import RealShell

from recorder import EnteredLine, TerminalModel


@pytest.fixture
def shell():
    sh = RealShell(rows=24, cols=80)
    yield sh
    sh.close()


def test_plain_line_is_certain(shell: RealShell) -> None:
    assert shell.type(b"echo hello\r") == [EnteredLine("echo hello", True, None)]


def test_backspace_edits_are_followed(shell: RealShell) -> None:
    assert shell.type(b"ls -lx\x7f\x7fa\r") == [EnteredLine("ls -a", True, None)]


def test_long_line_wrapping_past_the_width(shell: RealShell) -> None:
    command = "echo " + "x" * 150
    [line] = shell.type(command.encode() + b"\r")
    assert line == EnteredLine(command, True, None)


def test_tab_completion_is_uncertain(shell: RealShell) -> None:
    [line] = shell.type(b"ech\thi\r")
    assert not line.certain and "tab completion" in (line.reason or "")
    assert line.text == "echo hi"  # what the screen showed


def test_arrow_keys_are_uncertain(shell: RealShell) -> None:
    shell.type(b"echo first\r")
    [line] = shell.type(b"\x1b[A\r")  # history: up arrow
    assert not line.certain and "keys" in (line.reason or "")
    assert line.text == "echo first"


def test_ctrl_c_cancels_the_line(shell: RealShell) -> None:
    assert shell.type(b"rm -rf something\x03") == []
    assert shell.type(b"echo after\r") == [EnteredLine("echo after", True, None)]


def test_a_newline_inside_a_paste_is_an_enter() -> None:
    """Paste markers are not trusted: each pasted newline submits a line to decide."""
    model = TerminalModel(80, 24)
    model.feed_output(b"$ ")
    lines = model.feed_input(b"\x1b[200~echo one\necho two\x1b[201~")
    assert len(lines) == 1 and not lines[0].certain  # bash has not echoed the paste yet


def test_unechoed_keys_are_never_reported(shell: RealShell) -> None:
    shell.type(b"read -s secret\r")
    [line] = shell.type(b"hunter2\r")
    assert "hunter2" not in line.text
    assert not line.certain


def test_alternate_screen_is_uncertain() -> None:
    model = TerminalModel(80, 24)
    model.feed_output(b"$ vim\r\n\x1b[?1049h~\r\n~")
    model.feed_input(b":q")
    model.feed_output(b":q")
    [line] = model.feed_input(b"\r")
    assert not line.certain and "alternate screen" in (line.reason or "")


def test_huge_output_between_lines_is_cheap_and_right(shell: RealShell) -> None:
    model = shell.model
    model.feed_output(b"noise line\r\n" * 2_000_000)  # 24 MB never reaches pyte whole
    model.feed_output(b"user@host:~$ ")
    model.feed_input(b"whoami")
    model.feed_output(b"whoami")
    assert model.feed_input(b"\r") == [EnteredLine("whoami", True, None)]


def test_resize_keeps_reading_lines(shell: RealShell) -> None:
    shell.resize(40, 120)
    assert shell.type(b"stty size\r") == [EnteredLine("stty size", True, None)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=64)), max_size=30))
def test_never_raises_on_any_bytes(chunks: list[tuple[bool, bytes]]) -> None:
    model = TerminalModel(40, 10)
    for is_input, data in chunks:
        if is_input:
            for line in model.feed_input(data):
                assert isinstance(line.text, str)
        else:
            model.feed_output(data)


def test_multi_line_paste_into_real_bash_is_not_certain(shell: RealShell) -> None:
    """bash withholds the echo of a paste until it ends, so a pasted line cannot be read: refused."""
    lines = shell.type(b"\x1b[200~echo one\necho two\x1b[201~\r")
    assert lines and not lines[0].certain
