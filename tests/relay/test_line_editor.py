"""The bastion's line editor: what it submits is what it showed, with no control characters.

The screen is a real terminal model (pyte) fed the editor's output, so a
drawing bug shows as a difference between the screen and the line.
"""

from __future__ import annotations

import unicodedata

import pyte
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.relay.line_editor import (
    History,
    LineEditor,
    Signal,
    Submitted,
    layout,
)

PROMPT = b"user@web1:~$ "


class Terminal:
    """An editor drawing on a pyte screen, the way the gate drives it."""

    def __init__(self, width: int = 80, height: int = 40, prompt: bytes = PROMPT) -> None:
        self.screen = pyte.Screen(width, height)
        self.stream = pyte.ByteStream(self.screen)
        self.editor = LineEditor(width)
        self.prompt = prompt
        self.events: list[object] = []
        self.new_line()

    def new_line(self) -> None:
        self.stream.feed(self.prompt)
        self.prompt_row = self.screen.cursor.y
        self.stream.feed(self.editor.begin(self.prompt))

    def type(self, data: bytes, *, check=None) -> list[object]:
        """Feed keys; after every submitted line, `check` looks at the screen first."""
        self.editor.feed(data)
        events = []
        while True:
            step = self.editor.step()
            self.stream.feed(step.echo)
            if b"\x1b[2J" in step.echo:  # Ctrl-L: the prompt is drawn again at the top
                self.prompt_row = 0
            if step.event is None:
                break
            events.append(step.event)
            if isinstance(step.event, Submitted):
                if check is not None:
                    check(self, step.event)
                self.stream.feed(self.editor.finish())
                self.new_line()
            elif step.event == Signal("interrupt"):
                self.stream.feed(b"\r\n")
                self.new_line()
        self.events += events
        return events

    def shown(self, text: str) -> list[str]:
        """Where `text` differs from what the screen shows after the prompt (empty: no difference)."""
        start_col = len(self.prompt.decode()) % self.screen.columns
        positions = layout(text, start_col, self.screen.columns)
        problems = []
        for ch, (row, col) in zip(text, positions, strict=False):
            cell = self.screen.buffer[self.prompt_row + row][col].data
            if cell != ch:
                problems.append(f"{ch!r} at {row},{col}: screen has {cell!r}")
        end_row, end_col = positions[-1]
        tail = self.screen.display[self.prompt_row + end_row][end_col:]
        if tail.strip():
            problems.append(f"left on screen after the line: {tail!r}")
        return problems

    def cursor_at(self, index: int, text: str) -> bool:
        start_col = len(self.prompt.decode()) % self.screen.columns
        row, col = layout(text, start_col, self.screen.columns)[index]
        return (self.screen.cursor.y, self.screen.cursor.x) == (self.prompt_row + row, col)


def submitted(events: list[object]) -> list[str]:
    return [e.text for e in events if isinstance(e, Submitted)]


# --- editing ---------------------------------------------------------------------------


def test_typing_moving_and_deleting() -> None:
    term = Terminal()
    assert submitted(term.type(b"echo hllo\x1b[D\x1b[D\x1b[De\r")) == ["echo hello"]
    assert submitted(term.type(b"abc\x01X\x05Y\x02\x02\x7f\x1b[3~\r")) == ["XaY"]
    assert submitted(term.type(b"one two three\x17\x17four\r")) == ["one four"]
    assert submitted(term.type(b"hello world\x01\x0b\x19\x19\r")) == ["hello worldhello world"]
    assert submitted(term.type(b"abc\x1bOH\x1b[3~\x1bOF!\x1b[H>\r")) == [">bc!"]
    assert submitted(term.type(b"first second\x15third\r")) == ["third"]


def test_word_keys_and_transpose() -> None:
    term = Terminal()
    assert submitted(term.type(b"cat /etc/passwd\x1bb\x1bb\x1bdxx\r")) == ["cat /xx/passwd"]
    assert submitted(term.type(b"ab\x14\r")) == ["ba"]
    assert submitted(term.type(b"git push origin\x1b[1;5D\x1b\x7fmain \r")) == ["git main origin"]


def test_history_up_down_and_reverse_search() -> None:
    term = Terminal()
    term.type(b"echo one\recho two\rls -l\r")
    assert submitted(term.type(b"\x1b[A\x1b[A\r")) == ["echo two"]
    assert submitted(term.type(b"draft\x1b[A\x1b[B\r")) == ["draft"]
    assert submitted(term.type(b"\x12one\r")) == ["echo one"]
    assert submitted(term.type(b"\x12echo\x12\x05!\r")) == ["echo two!"]  # second hit, then edit
    assert submitted(term.type(b"keep\x12zz\x07\r")) == ["keep"]  # Ctrl-G cancels the search


def test_history_is_the_one_given() -> None:
    shell, sqlite = History(), History(["select 1;"])
    editor = LineEditor(80)
    editor.begin(b"$ ", history=shell)
    editor.feed(b"\x1b[Aid\r")
    assert editor.step().event == Submitted("id")
    editor.finish()
    editor.begin(b"sqlite> ", history=sqlite)
    editor.feed(b"\x1b[A\r")
    assert editor.step().event == Submitted("select 1;")
    assert shell.entries == ["id"] and sqlite.entries == ["select 1;"]


def test_control_characters_never_enter_the_line() -> None:
    term = Terminal()
    keys = b"a\x16\x15b\x00c\x1d\x1ed\x0fe\x11f\x13g\xc2\x9bh\x09i\r"  # ^V ^U ... C1 CSI, Tab
    [line] = submitted(term.type(keys))
    assert line == "bcdefghi"


def test_tab_rings_the_bell_and_is_not_inserted() -> None:
    editor = LineEditor(80)
    editor.begin(b"$ ")
    editor.feed(b"ls\t")
    step = editor.step()
    assert step.event is None and b"\x07" in step.echo and editor.text == "ls"


def test_signals_are_events() -> None:
    editor = LineEditor(80)
    editor.begin(b"$ ")
    editor.feed(b"\x04")
    assert editor.step().event == Signal("eof")
    editor.feed(b"ab\x01\x04\r")  # Ctrl-D on a non-empty line deletes
    assert editor.step().event == Submitted("b")
    editor.begin(b"$ ")
    editor.feed(b"half\x03")
    step = editor.step()
    assert step.event == Signal("interrupt") and step.echo.endswith(b"^C") and not editor.active
    editor.begin(b"$ ")
    editor.feed(b"\x1a\x1c")
    assert [editor.step().event, editor.step().event] == [Signal("suspend"), Signal("quit")]


def test_utf8_split_across_reads_and_invalid_bytes() -> None:
    editor = LineEditor(80)
    editor.begin(b"$ ")
    word = "échec 日本".encode()
    for i in range(len(word)):
        editor.feed(word[i : i + 1])
        assert editor.step().event is None
    editor.feed(b"\xff\xc3(\r")
    assert editor.step().event == Submitted("échec 日本(")


def test_escape_split_across_reads() -> None:
    editor = LineEditor(80)
    editor.begin(b"$ ")
    for chunk in (b"ab", b"\x1b", b"[", b"D", b"X\r"):
        editor.feed(chunk)
        step = editor.step()
    assert step.event == Submitted("aXb")


def test_bracketed_paste_submits_every_line_and_keeps_pasting_after_a_decision() -> None:
    editor = LineEditor(80)
    editor.begin(b"$ ")
    editor.feed(b"\x1b[200~echo one\r\ncat\t/etc/shadow\x03\nx\x1b[201~\r")
    assert editor.step().event == Submitted("echo one")
    assert editor.step().event is None  # waits: the caller decides first
    editor.finish()
    editor.begin(b"$ ")
    assert editor.step().event == Submitted("cat /etc/shadow")  # tab -> space, ^C is text
    editor.finish()
    editor.begin(b"$ ")
    assert editor.step().event == Submitted("x")


def test_a_long_line_wraps_and_moving_back_across_rows_draws_right() -> None:
    term = Terminal(width=20)
    text = "echo " + "0123456789" * 5
    keys = text.encode() + b"\x1b[H" + b"\x1b[C" * 3 + b"X"

    def check(term: Terminal, event: Submitted) -> None:
        assert term.shown(event.text) == []

    term.type(keys)
    expected = text[:3] + "X" + text[3:]
    assert term.shown(expected) == [] and term.cursor_at(4, expected)
    assert submitted(term.type(b"\r", check=check)) == [expected]


def test_a_line_ending_exactly_at_the_margin() -> None:
    term = Terminal(width=20, prompt=b"$ ")
    text = "x" * 18  # fills the first row after the prompt
    term.type(text.encode())
    assert term.cursor_at(len(text), text)
    term.type(b"\x7f")
    assert term.cursor_at(17, text[:17])


def test_resize_redraws_for_the_new_width() -> None:
    term = Terminal(width=30)
    text = "printf '%s\\n' " + "abc " * 12
    term.type(text.encode())
    term.type(b"\x1b[H")  # the cursor on the first row, then the terminal widens
    term.screen.resize(term.screen.lines, 50)
    term.stream.feed(term.editor.resize(50))
    assert term.shown(text) == [] and term.cursor_at(0, text)
    term.type(b"\x1b[F")
    term.prompt_row = term.screen.cursor.y  # the cursor on the last row, then it narrows
    term.screen.resize(term.screen.lines, 30)
    term.stream.feed(term.editor.resize(30))
    assert term.shown(text) == [] and term.cursor_at(len(text), text)


def test_wide_characters_wrap_as_terminals_do() -> None:
    positions = layout("ab日", 0, 3)
    assert positions == [(0, 0), (0, 1), (1, 0), (1, 2)]  # 日 does not fit in the last column


def test_secret_lines_are_not_echoed_or_remembered() -> None:
    editor = LineEditor(80)
    echo = editor.begin(b"Password: ", secret=True)
    editor.feed(b"hunter2\x7f2\x1b[A\r")
    step = editor.step()
    assert step.event == Submitted("hunter2", secret=True)
    assert b"hunter" not in echo + step.echo + editor.finish()
    assert editor.history.entries == []


def test_ctrl_l_clears_and_redraws_prompt_and_line() -> None:
    term = Terminal()
    term.type(b"echo hi\x0c")
    assert term.screen.display[0].startswith(PROMPT.decode() + "echo hi")


# --- the property: whatever is typed, the line submitted is the line shown ---------------

KEYS = [
    b"\x1b[D",
    b"\x1bOD",
    b"\x1b[C",
    b"\x1bOC",
    b"\x1b[H",
    b"\x1b[F",
    b"\x1bOH",
    b"\x1bOF",
    b"\x1b[1~",
    b"\x1b[4~",
    b"\x1b[3~",
    b"\x1b[A",
    b"\x1b[B",
    b"\x1bb",
    b"\x1bf",
    b"\x1bd",
    b"\x1b\x7f",
    b"\x1b[1;5C",
    b"\x1b[1;5D",
    b"\x7f",
    b"\x08",
    *(bytes([c]) for c in b"\x01\x02\x05\x06\x0b\x0e\x10\x12\x14\x15\x17\x19\x07\x09\x16\x00\x1d"),
    b"\x1b[200~",
    b"\x1b[201~",
    b"\x1b[99;9x",
    b"\x1bO",
    b"\x1b",
]
PRINTABLE = st.text(
    alphabet=st.characters(
        codec="utf-8",
        categories=("L", "N", "P", "S", "Zs"),
        exclude_characters="\u00ad",
    ).filter(
        lambda ch: (
            unicodedata.east_asian_width(ch) not in ("W", "F") and not unicodedata.combining(ch)
        )
    ),
    min_size=1,
    max_size=6,
)
KEY = st.one_of(st.sampled_from(KEYS), PRINTABLE.map(str.encode), st.binary(min_size=1, max_size=3))


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(min_value=8, max_value=50),
    keys=st.lists(KEY, max_size=60),
    enters=st.lists(st.integers(min_value=0, max_value=59), max_size=4),
)
def test_the_submitted_line_is_the_line_shown_and_has_no_control_characters(
    width: int, keys: list[bytes], enters: list[int]
) -> None:
    from wcwidth import wcwidth

    for at in sorted(set(enters), reverse=True):
        keys.insert(min(at, len(keys)), b"\r")
    keys.append(b"\x1b[201~\r")
    term = Terminal(width=width, height=60, prompt=b"$ ")
    lines: list[str] = []

    def check(term: Terminal, event: Submitted) -> None:
        text = event.text
        assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in text), text
        if all(wcwidth(ch) == 1 for ch in text):  # pyte draws other widths its own way
            assert term.shown(text) == [], (
                text,
                term.screen.display[term.prompt_row : term.prompt_row + 4],
            )
        lines.append(text)

    term.type(b"".join(keys), check=check)
    assert lines, "the last Enter submits a line"
