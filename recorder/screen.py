"""What command line was entered in an interactive shell, read off a terminal model.

    >>> model = TerminalModel(80, 24)
    >>> model.feed_output(b"$ "); model.feed_input(b"ls"); model.feed_output(b"ls")
    []
    >>> model.feed_input(b"\\r")
    [EnteredLine(text='ls', certain=True, reason=None)]

An audit aid and evidence for rules, not a perfect keylogger: the line is
what the screen shows after the prompt when Enter is pressed, checked
against the keys typed. Whenever the model cannot trust what it sees
(editing or history keys, completion, a prompt that moved, the alternate
screen, text that was not echoed) the line is reported with certain=False
and a reason; it is never guessed as certain. Keys that were typed but not
echoed (passwords) are never reported.

pyte parses about 1 MB/s, so output is only appended to a bounded tail;
pyte runs on that tail when the first key of a line is typed (to find the
prompt) and when Enter is pressed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyte

ENTER = (0x0D, 0x0A)
BACKSPACE = (0x7F, 0x08)
CTRL_C = 0x03
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
ALT_SCREEN_ON = (b"\x1b[?1049h", b"\x1b[?1047h", b"\x1b[?47h")
ALT_SCREEN_OFF = (b"\x1b[?1049l", b"\x1b[?1047l", b"\x1b[?47l")
_KEY_NAMES = {
    0x09: "tab completion",
    0x12: "history search",
    0x10: "history keys",
    0x0E: "history keys",
}


@dataclass(frozen=True)
class EnteredLine:
    text: str
    certain: bool
    reason: str | None = None


class TerminalModel:
    def __init__(self, width: int, height: int, *, tail_bytes: int = 32768) -> None:
        self.width, self.height = max(1, width), max(1, height)
        self.tail_bytes = tail_bytes
        self._screen = pyte.Screen(self.width, self.height)
        self._stream = pyte.ByteStream(self._screen)
        self._pending = bytearray()  # output not yet fed to pyte
        self._overflowed = False
        self._alt_screen = False
        self._pasting = False
        self._escape = bytearray()  # an escape sequence being typed
        self._typed: list[str] = []
        self._typed_bytes = b""
        self._prompt: tuple[int, int, str] | None = None
        self._doubts: list[str] = []
        self._last_enter: int | None = None

    # --- output: cheap, on the data path --------------------------------------------

    def feed_output(self, data: bytes) -> None:
        if b"\x1b[?" in data:
            self._track_alt_screen(data)
        self._pending += data
        if len(self._pending) > 2 * self.tail_bytes:
            del self._pending[: len(self._pending) - self.tail_bytes]
            self._overflowed = True

    def resize(self, width: int, height: int) -> None:
        self._sync()
        self.width, self.height = max(1, width), max(1, height)
        self._screen.resize(self.height, self.width)

    # --- input: what the agent typed ---------------------------------------------------

    def feed_input(self, data: bytes) -> list[EnteredLine]:
        """Keys the agent typed; returns the line(s) each Enter submitted."""
        lines: list[EnteredLine] = []
        try:
            self._feed_keys(bytes(data), lines)
        except Exception as exc:  # never let a model error reach the relay
            lines.append(EnteredLine("", False, f"terminal model error: {type(exc).__name__}"))
            self._reset_line()
        return lines

    def _feed_keys(self, data: bytes, lines: list[EnteredLine]) -> None:
        i = 0
        while i < len(data):
            if self._escape or data[i] == 0x1B:
                i = self._feed_escape(data, i)
                continue
            byte = data[i]
            i += 1
            if byte in ENTER:
                if not self._crlf_pair(byte):
                    lines.extend(self._enter())
                continue
            self._last_enter = None
            self._start_line()
            if byte in BACKSPACE:
                if self._typed:
                    self._typed.pop()
            elif byte == CTRL_C:
                self._reset_line()
            elif byte < 0x20:
                self._doubt(_KEY_NAMES.get(byte, "editing keys"))
            else:
                self._typed_bytes += bytes([byte])
                self._decode_typed()

    def _crlf_pair(self, byte: int) -> bool:
        """A \\n right after a \\r is one Enter, not two."""
        pair = self._last_enter == 0x0D and byte == 0x0A
        self._last_enter = byte
        return pair

    def _feed_escape(self, data: bytes, i: int) -> int:
        self._escape += data[i : i + 1]
        i += 1
        seq = bytes(self._escape)
        if seq == PASTE_START:
            self._escape.clear()
            self._start_line()
            self._pasting = True
        elif seq == PASTE_END:
            self._escape.clear()
            self._pasting = False
        elif len(seq) > 1 and (seq[-1:].isalpha() or seq[-1:] == b"~" or len(seq) > 16):
            if not (PASTE_START.startswith(seq) or PASTE_END.startswith(seq)):
                self._escape.clear()
                self._start_line()
                self._doubt("cursor, history or editing keys")
        elif len(seq) == 2 and seq[1:] != b"[" and seq[1:] != b"O":
            self._escape.clear()  # Alt+key: readline word motions and edits
            self._start_line()
            self._doubt("editing keys")
        return i

    # --- lines ---------------------------------------------------------------------------

    def _reset_line(self) -> None:
        self._typed = []
        self._typed_bytes = b""
        self._prompt = None
        self._doubts = []
        self._last_enter = None

    def _start_line(self) -> None:
        if self._prompt is None:
            self._sync()
            cursor = self._screen.cursor
            row = self._screen.display[cursor.y] if cursor.y < self.height else ""
            self._prompt = (cursor.y, cursor.x, row[: cursor.x])

    def _decode_typed(self) -> None:
        try:
            text = self._typed_bytes.decode("utf-8")
        except UnicodeDecodeError:
            if len(self._typed_bytes) < 4:
                return  # the rest of a multibyte character is coming
            text = self._typed_bytes.decode("utf-8", errors="replace")
        self._typed.extend(text)
        self._typed_bytes = b""

    def _doubt(self, reason: str) -> None:
        if reason not in self._doubts:
            self._doubts.append(reason)

    def _enter(self) -> list[EnteredLine]:
        self._start_line()
        assert self._prompt is not None
        self._sync()
        typed = "".join(self._typed)
        screen_text, problem = self._read_line(self._prompt)
        doubts = list(self._doubts)
        if problem:
            doubts.append(problem)
        if self._alt_screen:
            doubts.append("the alternate screen is active")
        if not doubts and screen_text != typed:
            # Typed ahead: the snapshot was taken on an older row, or before the prompt was drawn.
            stale = self._screen.cursor.y != self._prompt[0] or not self._prompt[2].strip()
            if typed and "\n" not in typed and stale and self._typed_at_cursor(typed):
                screen_text = typed  # typed ahead of the prompt: the keys sit right at the cursor
            else:
                doubts.append("the screen does not show what was typed")
        self._reset_line()
        reason = "; ".join(doubts) if doubts else None
        return [EnteredLine(text, reason is None, reason) for text in screen_text.split("\n")]

    def _typed_at_cursor(self, typed: str) -> bool:
        """Do the keys typed since the last Enter end exactly at the cursor, on screen?

        Covers typing ahead of a prompt that had not arrived yet: the first-key
        snapshot then points at the old line, but the echo lands after the new
        prompt, right before the cursor.
        """
        cursor = self._screen.cursor
        rows_needed = len(typed) // self.width + 2
        first = max(0, cursor.y - rows_needed)
        display = self._screen.display
        text = "".join(display[first : cursor.y]) + display[cursor.y][: cursor.x]
        return text.endswith(typed)

    def _read_line(self, prompt: tuple[int, int, str]) -> tuple[str, str | None]:
        """The text from the prompt to the end of the (possibly wrapped) line."""
        y, x, prompt_text = prompt
        display = self._screen.display
        cursor_y = min(self._screen.cursor.y, self.height - 1)
        if y >= self.height or display[y][:x] != prompt_text:
            # The screen scrolled while the line wrapped: find the prompt higher up.
            found = [
                r
                for r in range(cursor_y, -1, -1)
                if prompt_text and display[r].startswith(prompt_text)
            ]
            if not found:
                return display[cursor_y].rstrip(), "the prompt moved"
            y = found[0]
        rows = [display[y][x:]] + [display[r] for r in range(y + 1, cursor_y + 1)]
        # A row filled to the last column wrapped; a shorter one ended in a newline (a paste).
        parts = [row if row[-1:] not in ("", " ") else row.rstrip() + "\n" for row in rows[:-1]]
        return ("".join(parts) + rows[-1]).rstrip(), None

    # --- screen sync ---------------------------------------------------------------------

    def _sync(self) -> None:
        if self._overflowed:
            self._screen.reset()
            self._overflowed = False
        if self._pending:
            self._stream.feed(bytes(self._pending))
            self._pending.clear()

    def _track_alt_screen(self, data: bytes) -> None:
        on = max(data.rfind(seq) for seq in ALT_SCREEN_ON)
        off = max(data.rfind(seq) for seq in ALT_SCREEN_OFF)
        if on > off:
            self._alt_screen = True
        elif off > on:
            self._alt_screen = False
