"""The bastion's line editor: the agent's keys in; the bytes that draw the edit, and lines, out.

In an interactive shell the bastion, not the target, edits the line: the
target only ever receives whole lines that were decided. This module is
pure (bytes in, bytes out, no I/O, no asyncio):

    >>> editor = LineEditor(width=80)
    >>> _ = editor.begin(b"$ ")
    >>> editor.feed(b"lx\\x7fs -l\\x1b[Da\\r")
    >>> step = editor.step(); step.event
    Submitted(text='ls -al', secret=False)

Keys: printable UTF-8 is inserted; Backspace, Delete, Ctrl-D (on a
non-empty line), Left/Right/Home/End (CSI and SS3 forms), Ctrl-A/E/B/F,
Alt-B/F and Ctrl-Left/Right (words), Ctrl-K/U/W, Alt-D, Alt-Backspace and
Ctrl-Y (kill and yank), Ctrl-T, Ctrl-L (redraw), Up/Down and Ctrl-P/N
(history), Ctrl-R (reverse search), bracketed paste (each pasted newline
submits a line; a pasted tab is a space). Tab is refused with a bell: the
target is never asked to complete. Ctrl-C, Ctrl-D on an empty line, Ctrl-Z
and Ctrl-\\ are events for the caller (the gate decides what the target gets).

No control character ever enters the line (C0, DEL, C1): the target's
terminal would act on them (^U kills the line, ^V quotes, ^D ends input...).

Drawing follows linenoise's multi-line mode: the edit may wrap over several
rows; every change moves the cursor back to where the edit started, erases
to the end of the screen and draws the line again, then puts the cursor
where it belongs. The caller tells the width (and resizes).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from wcwidth import wcwidth

MAX_LINE = 64 * 1024  # characters in one line
MAX_SEQUENCE = 32  # bytes in one escape sequence; longer ones are dropped
HISTORY_SIZE = 1000
BELL = b"\x07"
PASTE_ON, PASTE_OFF = b"\x1b[?2004h", b"\x1b[?2004l"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
CTRL_C, CTRL_D = 0x03, 0x04


def ctrl(letter: str) -> int:
    return ord(letter) & 0x1F


@dataclass(frozen=True)
class Submitted:
    text: str
    secret: bool = False


@dataclass(frozen=True)
class Signal:
    """A key the caller handles: interrupt (^C), eof (^D on an empty line), suspend (^Z), quit."""

    key: str


Event = Submitted | Signal


@dataclass(frozen=True)
class Step:
    echo: bytes  # to draw on the agent's terminal
    event: Event | None  # None: the input ran out first


@dataclass
class History:
    """Lines submitted earlier, oldest first (the session's own decided lines)."""

    entries: list[str] = field(default_factory=list)
    limit: int = HISTORY_SIZE

    def add(self, text: str) -> None:
        if text.strip() and (not self.entries or self.entries[-1] != text):
            self.entries.append(text)
            del self.entries[: -self.limit]


def is_allowed_char(ch: str) -> bool:
    """What may enter a line: no C0/C1 control, no DEL, no surrogate."""
    return unicodedata.category(ch) not in ("Cc", "Cs")


def char_width(ch: str) -> int:
    width = wcwidth(ch)
    return 1 if width < 0 else width


def text_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def layout(text: str, start_col: int, width: int) -> list[tuple[int, int]]:
    """(row, col) of every character of `text` and of the end, when drawn from `start_col`.

    A character that does not fit on the row goes to the next one; a line that
    ends exactly at the margin ends at the start of the next row (the editor
    writes a newline there, so the terminal's cursor agrees).
    """
    row, col = 0, start_col
    positions = []
    for ch in text:
        w = char_width(ch)
        if w and col + w > width:
            row, col = row + 1, 0
        positions.append((row, col))
        col += w
    if col >= width:
        row, col = row + 1, 0
    positions.append((row, col))
    return positions


def csi(n: int, final: str) -> bytes:
    return f"\x1b[{n}{final}".encode() if n > 0 else b""


class LineEditor:
    def __init__(self, width: int = 80) -> None:
        self.width = max(1, width)
        self.history = History()
        self._input = bytearray()
        self._active = False
        self._secret = False
        self._prompt = b""
        self._start_col = 0
        self._chars: list[str] = []
        self._cursor = 0
        self._cursor_row = 0  # where the terminal's cursor is, in rows below the edit's first
        self._kill = ""
        self._pasting = False
        self._last_cr = False
        self._hist_index = 0
        self._draft: list[str] = []
        self._search: str | None = None  # the query, while searching history (Ctrl-R)
        self._search_hit: int | None = None
        self._search_saved: tuple[list[str], int] = ([], 0)
        self._dirty = False  # the line changed since it was last drawn
        self._appended = ""  # typed at its end since it was last drawn (drawn as is)
        self._end = (0, 0)  # where the drawn line ends, (row, col)

    # --- what the caller drives ------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active

    @property
    def text(self) -> str:
        return "".join(self._chars)

    @property
    def secret(self) -> bool:
        """The line being edited is secret (not drawn, not remembered)."""
        return self._active and self._secret

    @property
    def pending(self) -> int:
        """Bytes typed that have not been read yet."""
        return len(self._input)

    def begin(
        self, prompt: bytes = b"", *, secret: bool = False, history: History | None = None
    ) -> bytes:
        """A new line, edited right after `prompt` (which is already on the screen)."""
        self._active = True
        self._secret = secret
        self._prompt = prompt
        self._start_col = text_width(visible_text(prompt)) % self.width
        self._chars, self._cursor, self._cursor_row = [], 0, 0
        self._search = None
        self._dirty, self._appended, self._end = False, "", (0, self._start_col)
        if history is not None:
            self.history = history
        self._hist_index = len(self.history.entries)
        return b"" if secret else PASTE_ON

    def feed(self, data: bytes) -> None:
        self._input += data

    def feed_front(self, data: bytes) -> None:
        """Keys that come before those already waiting (a line handed back to be typed again)."""
        self._input[:0] = data

    def take_pending(self) -> bytes:
        """Every key not read yet, raw, for a program that reads keys itself."""
        data, self._input = bytes(self._input), bytearray()
        return data

    def cancel(self) -> None:
        """Stop editing without drawing anything (the line is dropped)."""
        self._active = False
        self._search = None

    @property
    def start_col(self) -> int:
        """The column where the line starts (after its prompt)."""
        return self._start_col

    @property
    def rows(self) -> int:
        """The rows the line takes on screen, from its first."""
        end_row, end_col = layout(self.text, self._start_col, self.width)[-1]
        return end_row if self._chars and end_col == 0 else end_row + 1

    def interrupt_pending(self) -> bool:
        """A Ctrl-C among the keys not read yet (it cancels what waits for them)."""
        return CTRL_C in self._input

    def drop_interrupt(self) -> None:
        """Forget the first Ctrl-C not read yet: it has done its job."""
        at = self._input.find(CTRL_C)
        if at >= 0:
            del self._input[at]

    def step(self) -> Step:
        """Read keys until one ends the line (an event) or they run out."""
        out = bytearray()
        while self._input and self._active:
            event = self._next_key(out)
            if event is not None:
                return Step(bytes(out) + self._draw(), event)
            if self._incomplete:
                break
        return Step(bytes(out) + self._draw(), None)

    def finish(self, *, newline: bool = True) -> bytes:
        """After a submitted line: the cursor to its end, then (unless told not to) a newline."""
        self._active = False
        if self._secret:
            return b"\r\n" if newline else b""
        end_row, end_col = layout(self.text, self._start_col, self.width)[-1]
        out = csi(end_row - self._cursor_row, "B")
        self._cursor_row = end_row
        if self._chars and end_col == 0:
            out += b"\r"  # the line ended at the margin: already at the start of a new row
        else:
            out += self._to_end_col(end_col) + (b"\r\n" if newline else b"")
        return out + PASTE_OFF

    def redraw(self) -> bytes:
        """Draw the prompt and the line again from the cursor's row (after a message)."""
        if not self._active:
            return b""
        self._cursor_row = 0
        return self._prompt + self._render()

    def resize(self, width: int) -> bytes:
        """The terminal changed width: draw the prompt and the line again on the cursor's row.

        As readline does: terminals differ in how they reflow wrapped rows, so
        nothing above the cursor's row is trusted (rows left there stay).
        """
        self.width = max(1, width)
        if not self._active:
            return b""
        self._start_col = text_width(visible_text(self._prompt)) % self.width
        self._cursor_row = 0
        if self._secret:
            return b""
        return b"\r\x1b[J" + _last_row(self._prompt) + self._render()

    # --- keys --------------------------------------------------------------------------

    _incomplete = False

    def _next_key(self, out: bytearray) -> Event | None:
        """Consume one key from the input; draw what it changed into `out`."""
        self._incomplete = False
        data = self._input
        byte = data[0]
        if byte == 0x1B:
            return self._escape(out)
        if byte >= 0x80:
            return self._multibyte(out)
        del data[0]
        cr_pair = self._last_cr and byte == 0x0A
        self._last_cr = byte == 0x0D
        if byte in (0x0D, 0x0A):
            return None if cr_pair else self._enter(out)
        if self._pasting:
            if byte == 0x09:
                self._insert(" ", out)
            elif byte >= 0x20 and byte != 0x7F:
                self._insert(chr(byte), out)
            return None
        if 0x20 <= byte < 0x7F:
            self._insert(chr(byte), out)
            return None
        return self._control(byte, out)

    def _control(self, byte: int, out: bytearray) -> Event | None:
        if self._search is not None:
            return self._search_key(byte, out)
        chars, cursor = self._chars, self._cursor
        if byte in (0x7F, 0x08):
            if cursor:
                del chars[cursor - 1]
                self._cursor -= 1
                self._touch()
        elif byte == CTRL_D:
            if not chars:
                return Signal("eof")
            if cursor < len(chars):
                del chars[cursor]
                self._touch()
        elif byte == CTRL_C:
            out += self._move_to_end() + b"^C"
            self._active = False
            return Signal("interrupt")
        elif byte == ctrl("Z"):
            return Signal("suspend")
        elif byte == 0x1C:
            return Signal("quit")
        elif byte == ctrl("A"):
            self._move(0, out)
        elif byte == ctrl("E"):
            self._move(len(chars), out)
        elif byte == ctrl("B"):
            self._move(cursor - 1, out)
        elif byte == ctrl("F"):
            self._move(cursor + 1, out)
        elif byte == ctrl("K"):
            self._cut(cursor, len(chars), out)
        elif byte == ctrl("U"):
            self._cut(0, cursor, out)
        elif byte == ctrl("W"):
            self._cut(_word_start(chars, cursor, str.isspace), cursor, out)
        elif byte == ctrl("Y"):
            for ch in self._kill:
                self._insert(ch, out)
            self._touch()
        elif byte == ctrl("T"):
            self._transpose(out)
        elif byte == ctrl("L"):
            out += b"\x1b[H\x1b[2J" + self.redraw()
        elif byte in (ctrl("P"), ctrl("N")):
            self._history(-1 if byte == ctrl("P") else 1, out)
        elif byte == ctrl("R"):
            self._start_search(out)
        elif byte == 0x09:
            out += BELL  # no completion: the target would complete what the bastion cannot see
        return None

    def _enter(self, out: bytearray) -> Event:
        if self._search is not None:
            self._accept_search()
        out += self._render()
        self._active = False
        text = self.text
        if not self._secret:
            self.history.add(text)
        return Submitted(text, self._secret)

    def _escape(self, out: bytearray) -> Event | None:
        data = self._input
        seq = _sequence(data)
        if seq is None:
            if len(data) > MAX_SEQUENCE:
                del data[:1]  # a runaway sequence: drop its ESC and read on
            else:
                self._incomplete = True
            return None
        del data[: len(seq)]
        self._last_cr = False
        if seq == PASTE_START:
            self._pasting = True
            return None
        if seq == PASTE_END:
            self._pasting = False
            return None
        if self._pasting:
            return None  # an escape inside a paste is not a key
        if self._search is not None and seq not in (b"\x1b\x1b",):
            self._accept_search()
            self._touch()
        return self._escape_key(seq, out)

    def _escape_key(self, seq: bytes, out: bytearray) -> Event | None:
        chars, cursor = self._chars, self._cursor
        key = _KEYS.get(seq)
        if key is None and seq.startswith(b"\x1b[") and seq[-1:] in (b"C", b"D") and b";" in seq:
            key = "word-right" if seq.endswith(b"C") else "word-left"  # Ctrl/Alt + arrow
        if key == "left":
            self._move(cursor - 1, out)
        elif key == "right":
            self._move(cursor + 1, out)
        elif key == "home":
            self._move(0, out)
        elif key == "end":
            self._move(len(chars), out)
        elif key == "delete":
            if cursor < len(chars):
                del chars[cursor]
                self._touch()
        elif key in ("up", "down"):
            self._history(-1 if key == "up" else 1, out)
        elif key == "word-left":
            self._move(_word_start(chars, cursor, _not_word), out)
        elif key == "word-right":
            self._move(_word_end(chars, cursor), out)
        elif key == "kill-word":
            self._cut(cursor, _word_end(chars, cursor), out)
        elif key == "rubout-word":
            self._cut(_word_start(chars, cursor, _not_word), cursor, out)
        elif key == "cancel" and self._search is not None:
            self._cancel_search(out)
        return None

    def _multibyte(self, out: bytearray) -> Event | None:
        data = self._input
        lead = data[0]
        need = (
            2
            if 0xC2 <= lead <= 0xDF
            else 3
            if 0xE0 <= lead <= 0xEF
            else 4
            if 0xF0 <= lead <= 0xF4
            else 0
        )
        if need == 0:
            del data[0]  # not a UTF-8 lead byte
            return None
        if len(data) < need:
            self._incomplete = True
            return None
        chunk = bytes(data[:need])
        try:
            ch = chunk.decode("utf-8")
        except UnicodeDecodeError:
            del data[0]
            return None
        del data[:need]
        self._last_cr = False
        if is_allowed_char(ch):
            self._insert(ch, out)
        return None

    # --- editing -----------------------------------------------------------------------

    def _insert(self, ch: str, out: bytearray) -> None:
        if self._search is not None:
            self._search_type(ch, out)
            return
        if len(self._chars) >= MAX_LINE:
            if not out.endswith(BELL):
                out += BELL
            return
        appending = self._cursor == len(self._chars)
        self._chars.insert(self._cursor, ch)
        self._cursor += 1
        if appending and not self._dirty:
            self._appended += ch  # typed at the end: often just the character is drawn
        else:
            self._touch()

    def _move(self, position: int, out: bytearray) -> None:
        position = max(0, min(len(self._chars), position))
        if position != self._cursor:
            self._cursor = position
            self._touch()

    def _cut(self, start: int, end: int, out: bytearray) -> None:
        if end <= start:
            return
        self._kill = "".join(self._chars[start:end])
        del self._chars[start:end]
        self._cursor = start
        self._touch()

    def _transpose(self, out: bytearray) -> None:
        chars, cursor = self._chars, self._cursor
        if len(chars) < 2 or cursor == 0:
            return
        if cursor == len(chars):
            cursor -= 1
        chars[cursor - 1], chars[cursor] = chars[cursor], chars[cursor - 1]
        self._cursor = cursor + 1
        self._touch()

    def _history(self, direction: int, out: bytearray) -> None:
        entries = self.history.entries
        index = self._hist_index + direction
        if self._secret or not 0 <= index <= len(entries):
            return
        if self._hist_index == len(entries):
            self._draft = list(self._chars)
        self._hist_index = index
        self._chars = list(entries[index]) if index < len(entries) else list(self._draft)
        self._cursor = len(self._chars)
        self._touch()

    # --- reverse search (Ctrl-R) -------------------------------------------------------

    def _start_search(self, out: bytearray) -> None:
        if self._secret:
            return
        self._search = ""
        self._search_hit = None
        self._search_saved = (list(self._chars), self._cursor)
        self._touch()

    def _search_type(self, ch: str, out: bytearray) -> None:
        assert self._search is not None
        self._search += ch
        self._find(
            len(self.history.entries) - 1 if self._search_hit is None else self._search_hit, out
        )

    def _find(self, start: int, out: bytearray) -> None:
        query = self._search or ""
        entries = self.history.entries
        for index in range(start, -1, -1):
            if query in entries[index]:
                self._search_hit = index
                self._touch()
                return
        out += BELL
        self._touch()

    def _search_key(self, byte: int, out: bytearray) -> Event | None:
        if byte == ctrl("R"):
            start = (
                (self._search_hit or 0) - 1
                if self._search_hit is not None
                else len(self.history.entries) - 1
            )
            if start >= 0:
                self._find(start, out)
            return None
        if byte in (0x7F, 0x08):
            self._search = (self._search or "")[:-1]
            self._search_hit = None
            if self._search:
                self._find(len(self.history.entries) - 1, out)
            else:
                self._touch()
            return None
        if byte == ctrl("G"):
            self._cancel_search(out)
            return None
        if byte == CTRL_C:
            self._search = None
            return self._control(byte, out)
        self._accept_search()
        self._touch()
        return self._control(byte, out)

    def _accept_search(self) -> None:
        if self._search_hit is not None:
            self._chars = list(self.history.entries[self._search_hit])
            self._cursor = len(self._chars)
        self._search = None

    def _cancel_search(self, out: bytearray) -> None:
        self._search = None
        self._chars, self._cursor = list(self._search_saved[0]), self._search_saved[1]
        self._touch()

    # --- drawing -----------------------------------------------------------------------

    def _shown(self) -> tuple[str, int]:
        """(what the edit area shows, where its cursor is, as an index into it)."""
        if self._search is None:
            return self.text, self._cursor
        hit = self.history.entries[self._search_hit] if self._search_hit is not None else ""
        label = f"(reverse-i-search)`{self._search}': "
        at = hit.find(self._search) if self._search else 0
        return label + hit, len(label) + max(0, at)

    def _touch(self) -> None:
        """The line changed: it is drawn again once the keys read now are done."""
        self._dirty = True

    def _draw(self) -> bytes:
        if self._dirty:
            return self._render()
        appended, self._appended = self._appended, ""
        if not appended:
            return b""
        row, col = self._end
        fits = all(char_width(ch) == 1 for ch in appended) and col + len(appended) < self.width
        if fits and self._search is None and self._cursor_row == row:
            if self._secret:
                return b""
            self._end = (row, col + len(appended))
            return appended.encode("utf-8")
        return self._render()

    def _rows(self) -> int:
        shown, _ = self._shown()
        return layout(shown, self._start_col, self.width)[-1][0] + 1

    def _to_start(self) -> bytes:
        """Move the terminal's cursor to where the edit starts."""
        out = csi(self._cursor_row, "A") + b"\r" + csi(self._start_col, "C")
        self._cursor_row = 0
        return out

    def _render(self) -> bytes:
        self._dirty, self._appended = False, ""
        if self._secret:
            return b""
        shown, cursor = self._shown()
        positions = layout(shown, self._start_col, self.width)
        self._end = positions[-1]
        out = bytearray(self._to_start())
        out += b"\x1b[J" + shown.encode("utf-8")
        end_row, end_col = positions[-1]
        if shown and end_col == 0:
            out += b"\r\n"  # ended at the margin: step onto the next row for real
        row, col = positions[cursor]
        out += csi(end_row - row, "A") + b"\r" + csi(col, "C")
        self._cursor_row = row
        return bytes(out)

    def _to_end_col(self, col: int) -> bytes:
        return b"\r" + csi(col, "C")

    def _move_to_end(self) -> bytes:
        if self._secret:
            return b""
        self._cursor = len(self._chars)
        return self._render()


# --- keys and words ----------------------------------------------------------------------

_KEYS = {
    b"\x1b[D": "left",
    b"\x1bOD": "left",
    b"\x1b[C": "right",
    b"\x1bOC": "right",
    b"\x1b[A": "up",
    b"\x1bOA": "up",
    b"\x1b[B": "down",
    b"\x1bOB": "down",
    b"\x1b[H": "home",
    b"\x1bOH": "home",
    b"\x1b[1~": "home",
    b"\x1b[7~": "home",
    b"\x1b[F": "end",
    b"\x1bOF": "end",
    b"\x1b[4~": "end",
    b"\x1b[8~": "end",
    b"\x1b[3~": "delete",
    b"\x1bb": "word-left",
    b"\x1bf": "word-right",
    b"\x1bd": "kill-word",
    b"\x1b\x7f": "rubout-word",
    b"\x1b\x08": "rubout-word",
    b"\x1b\x1b": "cancel",
}


def _sequence(data: bytearray) -> bytes | None:
    """The escape sequence at the start of `data` (ESC first), or None if incomplete."""
    if len(data) < 2:
        return None
    second = data[1]
    if second == ord("["):
        for i in range(2, min(len(data), MAX_SEQUENCE)):
            if 0x40 <= data[i] <= 0x7E:
                return bytes(data[: i + 1])
            if not 0x20 <= data[i] <= 0x3F:
                return bytes(data[:i])  # broken: drop what came so far
        return None
    if second == ord("O"):
        return bytes(data[:3]) if len(data) >= 3 else None
    if second == 0x1B and len(data) >= 3 and data[2] in (ord("["), ord("O")):
        return b"\x1b"  # ESC then a sequence: the first ESC alone
    return bytes(data[:2])  # Alt + key (or ESC ESC)


def _not_word(ch: str) -> bool:
    return not ch.isalnum()


def _word_start(chars: list[str], cursor: int, is_gap) -> int:  # type: ignore[no-untyped-def]
    i = cursor
    while i > 0 and is_gap(chars[i - 1]):
        i -= 1
    while i > 0 and not is_gap(chars[i - 1]):
        i -= 1
    return i


def _word_end(chars: list[str], cursor: int) -> int:
    i = cursor
    while i < len(chars) and _not_word(chars[i]):
        i += 1
    while i < len(chars) and not _not_word(chars[i]):
        i += 1
    return i


def _last_row(prompt: bytes) -> bytes:
    return prompt[max(prompt.rfind(b"\n"), prompt.rfind(b"\r")) + 1 :]


def visible_text(data: bytes) -> str:
    """The text of the prompt's last row as the terminal shows it (escapes left out)."""
    text = data.decode("utf-8", "replace")
    last = max(text.rfind("\n"), text.rfind("\r"))
    text = text[last + 1 :]
    shown = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            i = _skip_escape(text, i)
            continue
        if is_allowed_char(ch):
            shown.append(ch)
        i += 1
    return "".join(shown)


def _skip_escape(text: str, i: int) -> int:
    """Index just past the escape sequence at `text[i]` (CSI, OSC, or two characters)."""
    if text[i + 1 : i + 2] == "[":
        j = i + 2
        while j < len(text) and not "@" <= text[j] <= "~":
            j += 1
        return j + 1
    if text[i + 1 : i + 2] == "]":
        for j in range(i + 2, len(text)):
            if text[j] == "\x07":
                return j + 1
            if text[j] == "\x1b" and text[j + 1 : j + 2] == "\\":
                return j + 2
        return len(text)
    return i + 2
