"""What the gate needs to know of the target's output: the row being written, and the screen mode.

    >>> tail = OutputTail()
    >>> tail.feed(b"Welcome\\r\\n[sudo] password for deploy: ")
    >>> tail.row, tail.password_prompt
    (b'[sudo] password for deploy: ', True)
    >>> tail.feed(b"\\x1b[?1049h"); tail.alternate_screen
    True

The row is the output since the last newline (a program's prompt, drawn
again after a refused line, and the place where the next typed line
starts). A password prompt there makes the next typed line secret. The
alternate screen (a full-screen program) is followed across reads.
"""

from __future__ import annotations

import re

from bastion.relay.line_editor import visible_text
from recorder.screen import ALT_SCREEN_OFF as ALT_OFF
from recorder.screen import ALT_SCREEN_ON as ALT_ON

MAX_ROW = 512  # bytes of the current row kept
_OVERLAP = max(len(s) for s in ALT_ON + ALT_OFF) - 1
_PASSWORD = re.compile(r"(?i)\b(pass(word|phrase|code)|PIN)\b[^\n]*[:?]\s*$")


class OutputTail:
    def __init__(self) -> None:
        self.row = b""
        self.alternate_screen = False
        self.entered_alternate = (
            False  # set by each switch to the alternate screen; the gate clears it
        )
        self._carry = b""

    def feed(self, data: bytes) -> None:
        if b"\x1b[?" in data or self._carry:
            self._screen_mode(self._carry + data)
        self._carry = data[-_OVERLAP:] if b"\x1b" in data[-_OVERLAP:] else b""
        newline = data.rfind(b"\n")
        row = data[newline + 1 :] if newline >= 0 else self.row + data
        self.row = row[-MAX_ROW:]

    @property
    def password_prompt(self) -> bool:
        return bool(_PASSWORD.search(visible_text(self.row)))

    def _screen_mode(self, data: bytes) -> None:
        on = max(data.rfind(seq) for seq in ALT_ON)
        off = max(data.rfind(seq) for seq in ALT_OFF)
        if on > off:
            self.alternate_screen = True
        elif off > on:
            self.alternate_screen = False
        if on >= 0:  # the carry is shorter than a switch: this one is new
            self.entered_alternate = True
