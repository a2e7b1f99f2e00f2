"""The text a session put on screen, line by line, for a search index.

    >>> text = ScreenText(20, 3, newline_mode=True)
    >>> text.feed(1.0, "one\\ntwo\\nthree\\nfour\\n")
    >>> [line for _, line in text.finish()]
    ['one', 'two', 'three', 'four']

pyte plays the output onto a screen; a line is captured when it scrolls off
the top, when the screen is cleared, and what is left at the end, so colour
codes, cursor movement, carriage-return progress bars and full-screen
programs give the text a person saw, not the raw bytes. Exec output has no
terminal translating "\\n" into "\\r\\n", so `newline_mode` makes a line feed
return the cursor too. pyte is slow (~1 MB/s), so at most `max_chars` of
output are played; the rest is counted, not indexed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyte

DEFAULT_MAX_CHARS = 4 * 1024 * 1024


class _CapturingScreen(pyte.Screen):
    """A screen that hands over each line, with the time it was last written, before it
    is scrolled away or erased."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.captured: list[tuple[float, str]] = []
        self.now = 0.0
        self._written = [0.0] * lines

    def draw(self, data: str) -> None:
        self._written[self.cursor.y] = self.now
        super().draw(data)

    def index(self) -> None:
        top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0:
            self.captured.append((self._written[0], self._text(0)))
            self._written = self._written[1:] + [self.now]
        super().index()

    def erase_in_display(self, how: int = 0, *args: object, **kwargs: object) -> None:
        if how in (2, 3):
            self.captured.extend((self._written[y], self._text(y)) for y in range(self.lines))
        super().erase_in_display(how, *args, **kwargs)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        super().resize(lines, columns)
        self._written = (self._written + [self.now] * self.lines)[: self.lines]

    def _text(self, y: int) -> str:
        row = self.buffer[y]
        return "".join(row[x].data for x in range(self.columns)).rstrip()

    def remaining(self) -> list[tuple[float, str]]:
        return [(self._written[y], self._text(y)) for y in range(self.lines)]


class ScreenText:
    def __init__(
        self,
        width: int,
        height: int,
        *,
        newline_mode: bool = False,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self._screen = _CapturingScreen(max(1, min(width, 1000)), max(1, min(height, 500)))
        if newline_mode:
            self._screen.set_mode(pyte.modes.LNM)
        self._stream = pyte.Stream(self._screen)
        self._budget = max_chars
        self._lines: list[tuple[float, str]] = []
        self.skipped_chars = 0

    def feed(self, time: float, data: str) -> None:
        if self._budget <= 0:
            self.skipped_chars += len(data)
            return
        if len(data) > self._budget:
            self.skipped_chars += len(data) - self._budget
            data = data[: self._budget]
        self._budget -= len(data)
        self._screen.now = time
        self._stream.feed(data)
        if self._screen.captured:
            self._lines.extend(item for item in self._screen.captured if item[1])
            self._screen.captured.clear()

    @property
    def full(self) -> bool:
        """The budget is spent: nothing more will be played."""
        return self._budget <= 0

    def resize(self, width: int, height: int) -> None:
        self._screen.resize(max(1, min(height, 500)), max(1, min(width, 1000)))

    def lines(self) -> Iterator[tuple[float, str]]:
        """Lines captured so far (each returned once)."""
        lines, self._lines = self._lines, []
        yield from lines

    def finish(self) -> Iterator[tuple[float, str]]:
        yield from self.lines()
        yield from ((time, line) for time, line in self._screen.remaining() if line)
