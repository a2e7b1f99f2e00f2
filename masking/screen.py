"""What a terminal screen shows after the output: secrets assembled on it are overwritten.

    >>> screen = ScreenMasker(cols=40, rows=5)
    >>> screen.feed(b"AKIAIOSF\\r\\n\\x1b[1A\\x1b[9GODNN7EXAMPLE")  # the key put together by a move
    True
    >>> fix, found = screen.corrections()
    >>> found
    [('aws-access-key', 0)]
    >>> fix.startswith(b"\\x1b7\\x1b[1;1H")  # save the cursor, go to the key, overwrite, restore
    True

The stream masker sees bytes in order; a full-screen program (or anyone
moving the cursor between lines) can put a secret together from pieces
written at different places. This model (pyte) is fed the masked output
lazily: bytes are kept in a bounded buffer and played only when output
that moves the cursor across lines has been seen and the output pauses
(the channel's screen deadline), so plain output costs a list append. The
screen's rows (and pairs of rows, for a secret wrapped across the edge) are
scanned with the same detectors; a finding is overwritten in place by a
marker of the same width (`*` where the marker does not fit), between a
cursor save and restore, and the correction is played into the model too.

pyte parses about 1 MB/s: a check plays at most MAX_PENDING bytes (older
output is dropped and the screen rebuilt from what is kept), so one costs
at most a few tens of milliseconds, and checks come no faster than the
channel's hold delay. A caller with a busy event loop may run
`corrections()` in a thread: it touches nothing but this object.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyte

from masking.engine import Scanner
from masking.table import BUILTIN, Detector

MAX_PENDING = 32 * 1024
_MOVES = re.compile(rb"\x1b\[[0-9;?]*[ABEFHJLMSTdfrsu]|\x1b[78DEMc]|\x1b\[\?(?:1049|47|1047)[hl]")


class ScreenMasker:
    def __init__(
        self, detectors: Sequence[Detector] = BUILTIN, cols: int = 80, rows: int = 24
    ) -> None:
        self._scanner = Scanner(detectors)
        self._screen = pyte.Screen(max(cols, 1), max(rows, 1))
        self._stream = pyte.ByteStream(self._screen)
        self._pending: list[bytes] = []
        self._size = 0
        self._overflow = False
        self._moved = False

    def feed(self, data: bytes) -> bool:
        """Note output the agent was sent; True if the screen should be checked once it pauses."""
        self._pending.append(data)
        self._size += len(data)
        if self._size > MAX_PENDING:
            joined = b"".join(self._pending)[-MAX_PENDING:]
            self._pending, self._size, self._overflow = [joined], len(joined), True
        if b"\x1b" in data and _MOVES.search(data) is not None:
            self._moved = True
        return self._moved

    def resize(self, cols: int, rows: int) -> None:
        self._play()
        self._screen.resize(max(rows, 1), max(cols, 1))

    def corrections(self) -> tuple[bytes, list[tuple[str, int]]]:
        """Bytes that overwrite the secrets the screen now shows, and (detector, row) of each."""
        self._play()
        if not self._moved:
            return b"", []
        self._moved = False
        fixes: list[bytes] = []
        found: list[tuple[str, int]] = []
        for row, col, width, name in self._findings():
            text = b"[MASKED:" + name.encode() + b"]"
            text = text if len(text) <= width else b""
            fixes.append(b"\x1b[%d;%dH" % (row + 1, col + 1) + text + b"*" * (width - len(text)))
            found.append((name, row))
        if not fixes:
            return b"", []
        fix = b"\x1b7" + b"".join(fixes) + b"\x1b8"
        self._stream.feed(fix)
        return fix, found

    def _play(self) -> None:
        if not self._pending:
            return
        if self._overflow:
            self._screen.reset()
            self._overflow = False
        data = b"".join(self._pending)
        self._pending, self._size = [], 0
        self._stream.feed(data)

    def _row(self, y: int) -> tuple[bytes, list[int]]:
        """Row y as UTF-8, and the column of each byte."""
        line = self._screen.buffer[y]
        out = bytearray()
        cols: list[int] = []
        for x in range(self._screen.columns):
            char = line[x].data.encode("utf-8", "replace") if line[x].data else b""
            out += char
            cols += [x] * len(char)
        return bytes(out), cols

    def _findings(self) -> list[tuple[int, int, int, str]]:
        """(row, first column, width in columns, detector) of each secret on the screen."""
        rows = [self._row(y) for y in range(self._screen.lines)]
        results: dict[tuple[int, int], tuple[int, int, int, str]] = {}
        for y, (text, cols) in enumerate(rows):
            for span in self._scanner.find(text, 0, len(text)):
                start, end = cols[span.mask_start], cols[span.mask_end - 1] + 1
                results[(y, start)] = (y, start, end - start, span.name)
            if y + 1 < len(rows) and text.rstrip(b" ") and len(text.rstrip(b" ")) == len(text):
                self._wrapped(y, rows, results)
        return list(results.values())

    def _wrapped(
        self,
        y: int,
        rows: list[tuple[bytes, list[int]]],
        results: dict[tuple[int, int], tuple[int, int, int, str]],
    ) -> None:
        """A row filled to its last column continues on the next: scan the two as one."""
        (top, top_cols), (bottom, bottom_cols) = rows[y], rows[y + 1]
        joined = top + bottom
        for span in self._scanner.find(joined, 0, len(joined)):
            if not (span.mask_start < len(top) < span.mask_end):
                continue
            start = top_cols[span.mask_start]
            results[(y, start)] = (y, start, self._screen.columns - start, span.name)
            end = bottom_cols[span.mask_end - 1 - len(top)] + 1
            results[(y + 1, 0)] = (y + 1, 0, end, span.name)
