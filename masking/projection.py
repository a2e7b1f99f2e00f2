"""What a terminal would show of some bytes, and which bytes produced each character.

    >>> view = stripped(b"key AKIA\\x1b[1mIOSFODNN7EXAMPLE\\x1b[m ok", 0, 37)
    >>> view.text
    b'key AKIAIOSFODNN7EXAMPLE ok'
    >>> view.origin(4, 24)  # the key in the view -> the bytes that printed it
    (4, 30)

Two views of a line, both scanned by the masker besides the raw bytes:

- `stripped`: escape sequences (CSI, OSC, DCS, charset selection...),
  zero-width characters and the control bytes a terminal does not display
  (NUL, BEL, DEL, ...) removed. Removing NULs also decodes UTF-16 and UTF-32
  text of ASCII characters (`iconv -t UTF-16LE`), which is what secrets are
  made of. A secret printed and then erased (`\\r` and blanks) is still in
  this view: it was on the screen for a moment, and it is in the stream.
- `rendered`: the line as the terminal leaves it, with backspaces, carriage
  returns, tabs and the cursor moves that stay on the line (CSI C, D, G, K,
  P, X, @) applied: `AKIAIOSFX\\bODNN7EXAMPLE` shows the key whole.

Both map a span of their text back to the raw bytes that produced it; the
masker replaces that whole range (escape bytes included). Only lines that
hold such bytes get views: `interesting` finds them without a loop in Python.
Moves to other lines (CSI A, B, H...) are for the screen model (screen.py).
"""

from __future__ import annotations

import bisect
import re

# An escape sequence, whole: CSI, OSC/DCS/SOS/PM/APC strings (bounded), two-byte escapes.
ESCAPE = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)"
    rb"|\x1b[PX^_][^\x1b]{0,4096}\x1b\\"
    rb"|\x1b[ -/]*[0-~]"
)
# Characters that take no room on a terminal: zero-width spaces and joiners, direction
# marks, word joiner and invisible operators, BOM, soft hyphen, combining grapheme joiner.
ZERO_WIDTH = (
    rb"\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa0-\xa4\xa6-\xaf]|\xef\xbb\xbf|\xc2\xad|\xcd\x8f"
    rb"|\xe1\xa0\x8e"
)
_INVISIBLE = rb"[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]"
_REMOVED = re.compile(ESCAPE.pattern + rb"|" + ZERO_WIDTH + rb"|" + _INVISIBLE + rb"+")
# Bytes that make a line differ from what a terminal shows of it.
INTERESTING = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|" + ZERO_WIDTH)
_NEEDS_RENDER = re.compile(rb"\x08|\r(?!\n)|\x1b\[[0-9;]*[CDGKPX@`a]")
# The same escapes behind one literal ESC, which re finds fast: for text with escapes only.
_ESCAPES_ONLY = re.compile(
    rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)|[PX^_][^\x1b]{0,4096}\x1b\\"
    rb"|[ -/]*[0-~])"
)


class View:
    """`text`, and a way back: for each kept run, its (view offset, raw offset, raw end)."""

    def __init__(
        self,
        text: bytes,
        view_starts: tuple[int, ...] = (),
        raw_starts: tuple[int, ...] = (),
        raw_ends: tuple[int, ...] = (),
    ) -> None:
        self.text = text
        self.view_starts, self.raw_starts, self.raw_ends = view_starts, raw_starts, raw_ends

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The raw range [a, b) that produced text[start:end] (everything in between included)."""
        self._map()
        first = bisect.bisect_right(self.view_starts, start) - 1
        last = bisect.bisect_right(self.view_starts, end - 1) - 1
        raw_start = self.raw_starts[first] + (start - self.view_starts[first])
        raw_end = self.raw_starts[last] + (end - self.view_starts[last])
        return raw_start, min(max(raw_end, raw_start), self.raw_ends[last])

    def _map(self) -> None:
        """Views are usually scanned and found clean: the map is made only when asked for."""


class _Removed(View):
    """buf[lo:hi] less the bytes a pattern matches; the map is built on first use."""

    def __init__(self, buf: bytes, lo: int, hi: int, removed: re.Pattern[bytes]) -> None:
        super().__init__(removed.sub(b"", buf[lo:hi]))
        self._source = (buf, lo, hi, removed)

    def _map(self) -> None:
        if self.view_starts:
            return
        buf, lo, hi, removed = self._source
        view_starts: list[int] = []
        raw_starts: list[int] = []
        raw_ends: list[int] = []
        size = 0
        pos = lo
        for match in removed.finditer(buf, lo, hi):
            if match.start() > pos:
                view_starts.append(size)
                raw_starts.append(pos)
                raw_ends.append(match.start())
                size += match.start() - pos
            pos = match.end()
        if pos < hi or not view_starts:
            view_starts.append(size)
            raw_starts.append(pos)
            raw_ends.append(hi)
        self.view_starts, self.raw_starts, self.raw_ends = (
            tuple(view_starts), tuple(raw_starts), tuple(raw_ends),
        )  # fmt: skip


def stripped(buf: bytes, lo: int, hi: int, kinds: frozenset[str] = frozenset({"other"})) -> View:
    """buf[lo:hi] with escape sequences, zero-width characters and invisible controls removed.

    `kinds` (from `Controls.kinds`) picks a faster pattern when only escapes occur."""
    removed = _ESCAPES_ONLY if kinds <= {"escape", "move", "cr", "bs"} else _REMOVED
    return _Removed(buf, lo, hi, removed)


class _WithoutNuls(_Removed):
    def __init__(self, buf: bytes, lo: int, hi: int) -> None:
        View.__init__(self, buf[lo:hi].replace(b"\0", b""))
        self._source = (buf, lo, hi, _NULS)


_NULS = re.compile(rb"\x00+")


def without_nuls(buf: bytes, lo: int, hi: int) -> View:
    """buf[lo:hi] with its NULs removed: UTF-16 and UTF-32 strings inside binary data, read."""
    return _WithoutNuls(buf, lo, hi)


try:
    import hyperscan as _hs
except ImportError:  # pragma: no cover
    _hs = None

_KINDS = (
    ("escape", rb"\x1b"),
    ("bs", rb"\x08"),
    ("cr", rb"\r[^\n]"),
    ("zero-width", ZERO_WIDTH),
    ("other", rb"[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]"),
    ("move", rb"\x1b\[[0-9;]*[CDGKPX@`a]"),
    ("binary", rb"[\x01-\x06\x0e-\x1a\x1c-\x1f]|\x00\x00"),
)


class Controls:
    """Which bytes a terminal would not show as they are occur in a buffer, and from where:
    one Hyperscan pass that stops at the first of each kind (re without Hyperscan)."""

    def __init__(self) -> None:
        self._db = None
        if _hs is not None:
            self._db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            self._db.compile(
                expressions=[p for _, p in _KINDS],
                ids=list(range(len(_KINDS))),
                flags=[_hs.HS_FLAG_SINGLEMATCH] * len(_KINDS),
            )
            self._scratch = _hs.Scratch(self._db)
        self._regexes = [(kind, re.compile(p)) for kind, p in _KINDS]

    def find(self, buf: bytes, lo: int, hi: int) -> tuple[int, frozenset[str]]:
        """(offset of the first such byte or -1, the kinds present)."""
        found: dict[str, int] = {}
        if self._db is None:
            for kind, regex in self._regexes:
                match = regex.search(buf, lo, hi)
                if match is not None:
                    found[kind] = match.end()
        else:

            def on_match(id_: int, start: int, end: int, flags: int, context: object) -> None:
                found[_KINDS[id_][0]] = lo + end

            region = buf[lo:hi] if lo or hi != len(buf) else buf
            self._db.scan(region, match_event_handler=on_match, scratch=self._scratch)
        if not found:
            return -1, frozenset()
        return max(lo, min(found.values()) - 4), frozenset(found)


CONTROLS = Controls()


def render_lines(buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
    """(start, end) of the lines in buf[lo:hi] that need rendering (backspace, CR, moves)."""
    lines: list[tuple[int, int]] = []
    for match in _NEEDS_RENDER.finditer(buf, lo, hi):
        if lines and match.start() < lines[-1][1]:
            continue
        start = buf.rfind(b"\n", lo, match.start()) + 1 or lo
        end = buf.find(b"\n", match.end(), hi)
        lines.append((start, hi if end < 0 else end))
    return lines


def needs_render(buf: bytes, lo: int, hi: int) -> bool:
    return _NEEDS_RENDER.search(buf, lo, hi) is not None


_TOKEN = re.compile(
    ESCAPE.pattern + rb"|(?P<zw>" + ZERO_WIDTH + rb")|(?P<ctl>[\x00-\x1f\x7f])"
    rb"|(?P<char>[\x20-\x7e]|[\xc0-\xff][\x80-\xbf]{0,3}|[\x80-\xff])"
)
_CSI = re.compile(rb"\x1b\[([0-9;]*)([CDGKPX@`a])")
TAB = 8


class _Line:
    """The cells of one terminal line: (character bytes, raw start, raw end); -1 for a blank."""

    def __init__(self) -> None:
        self.cells: list[tuple[bytes, int, int]] = []
        self.col = 0

    def put(self, char: bytes, start: int, end: int) -> None:
        cells = self.cells
        while len(cells) < self.col:
            cells.append((b" ", -1, -1))
        if self.col < len(cells):
            cells[self.col] = (char, start, end)
        else:
            cells.append((char, start, end))
        self.col += 1

    def blank(self, start: int, stop: int) -> None:
        for col in range(max(0, start), min(stop, len(self.cells))):
            self.cells[col] = (b" ", -1, -1)

    def csi(self, params: bytes, final: bytes) -> None:
        first = params.split(b";")[0]
        count = int(first) if first.isdigit() else 0
        cells = self.cells
        if final == b"C" or final == b"a":
            self.col += max(count, 1)
        elif final == b"D":
            self.col = max(0, self.col - max(count, 1))
        elif final in (b"G", b"`"):
            self.col = max(count, 1) - 1
        elif final == b"K":
            if count == 0:
                del cells[self.col :]
            elif count == 1:
                self.blank(0, self.col + 1)
            else:
                cells.clear()
        elif final == b"P":
            del cells[self.col : self.col + max(count, 1)]
        elif final == b"@":
            cells[self.col : self.col] = [(b" ", -1, -1)] * max(count, 1)
        elif final == b"X":
            self.blank(self.col, self.col + max(count, 1))


def rendered(buf: bytes, lo: int, hi: int) -> View:
    """One line, buf[lo:hi] (no newline inside), as a terminal leaves it."""
    line = _Line()
    for match in _TOKEN.finditer(buf, lo, hi):
        token = match.group()
        if match.group("char") is not None:
            line.put(token, match.start(), match.end())
        elif match.group("ctl") is not None:
            if token == b"\r":
                line.col = 0
            elif token == b"\x08":
                line.col = max(0, line.col - 1)
            elif token == b"\t":
                line.col = (line.col // TAB + 1) * TAB
        elif match.group("zw") is None:
            csi = _CSI.fullmatch(token)
            if csi is not None:
                line.csi(csi.group(1), csi.group(2))
    return _cells_view(line.cells, lo)


def _cells_view(cells: list[tuple[bytes, int, int]], lo: int) -> View:
    """A view whose every cell maps alone (cells written out of order keep their own origin)."""
    text = []
    view_starts, raw_starts, raw_ends = [], [], []
    size = 0
    for char, start, end in cells:
        view_starts.append(size)
        if start < 0:  # a blank: map it to its neighbour so that spans stay ordered
            start = end = raw_ends[-1] if raw_ends else lo
        raw_starts.append(start)
        raw_ends.append(end)
        text.append(char)
        size += len(char)
    if not cells:
        view_starts.append(0)
        raw_starts.append(lo)
        raw_ends.append(lo)
    return _CellView(b"".join(text), tuple(view_starts), tuple(raw_starts), tuple(raw_ends))


class _CellView(View):
    """Cells may come from anywhere on the line: a span maps to the hull of its cells."""

    def origin(self, start: int, end: int) -> tuple[int, int]:
        first = bisect.bisect_right(self.view_starts, start) - 1
        last = bisect.bisect_right(self.view_starts, end - 1) - 1
        starts = [s for s in self.raw_starts[first : last + 1]]
        ends = [e for e in self.raw_ends[first : last + 1]]
        return min(starts), max(ends)
