"""Secrets passed through an encoder or a transformation on their way out.

    >>> from masking.engine import Scanner
    >>> from masking.table import BUILTIN
    >>> enc = EncodedScanner(Scanner(BUILTIN))
    >>> enc.find(b"QUtJQUlPU0ZPRE5ON0VYQU1QTEUK\\n", 0, 29)
    [('base64', 'aws-access-key', 0)]

Two kinds, by what can be done about them:

- Masked, because the secret's bytes are still where they were: `rev`
  (the line's text reversed) and `fold -w N` (a run of lines of one width,
  joined). `spans()` returns findings on the raw bytes, like the engine.
- Reported, because the output no longer holds the secret's bytes:
  base64 (on one line or wrapped), hex as xxd, xxd -p, hexdump -C, od -x
  and od -c print it, and whole-stream compression (gzip, bzip2, xz:
  `CompressedStream`). `find()` returns (encoder, detector, offset) for an
  `EncodedSecret` event; the relay raises an alert naming the encoder.

Only distinctive secrets (provider tokens and credentials, not personal
data) are looked for in decoded bytes, so that random decoded bytes do not
raise alerts. Everything here runs only where a cheap trigger shows there
may be something to decode.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import bz2
import lzma
import re
import zlib
from collections.abc import Iterator
from typing import Any

from masking.builtins import Span
from masking.engine import Scanner, _hs

_B64_RUN = re.compile(rb"[A-Za-z0-9+/]{20,}={0,2}")
_B64_LINE = re.compile(rb"[ \t]*([A-Za-z0-9+/]{16,}={0,2})[ \t\r]*")
_HEX_RUN = re.compile(rb"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){16,}(?![0-9A-Fa-f])")
# Hex dump lines: offset, then the bytes as the tool prints them.
_DUMPS: tuple[tuple[str, re.Pattern[bytes], str], ...] = (
    ("hex (xxd)", re.compile(rb"[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ){1,16}) ?.*"), "be"),
    (
        "hex (hexdump -C)",
        re.compile(rb"[0-9a-f]{8}  ((?:[0-9a-f]{2}  ?){1,16}) *(?:\|.*\|)?"),
        "be",
    ),
    ("hex (od -x)", re.compile(rb"[0-7a-f]{7} ((?:[0-9a-f]{4} ?){1,8})"), "le16"),
    ("hex (od -t x1)", re.compile(rb"[0-7a-f]{6,7} ((?:[0-9a-f]{2} ?){1,16})(?: +>.*<)?"), "be"),
    ("od -c", re.compile(rb"[0-7]{7} ((?:   [ -~]|  \\[0-7nrtabfv0]{1,3}){1,16})"), "chars"),
)
_DUMP_TRIGGER = re.compile(rb"(?m)^[0-7a-f]{6,8}:? {1,2}(?:[0-9a-f]{2,6}|   [ -~]) ")
_ESCAPES = {b"\\n": b"\n", b"\\t": b"\t", b"\\r": b"\r", b"\\0": b"\0"}
MAX_DECODED = 4 * 1024 * 1024  # bytes of one stream a decompressor may produce


class EncodedScanner:
    """Looks at decided text for reversed, folded and encoded secrets."""

    def __init__(self, scanner: Scanner) -> None:
        detectors = scanner.detectors
        self._tokens = Scanner(
            [d for d in detectors if d.kind == "token" and all(t.literal for t in d.triggers)]
        )
        self._secrets = Scanner([d for d in detectors if d.group in ("cloud-keys", "credentials")])
        self._trigger = _TRIGGER

    # --- masked: the secret's bytes are all there ------------------------------------

    def spans(self, buf: bytes, lo: int, hi: int) -> list[Span]:
        """Findings in reversed lines and in runs of folded lines, on the raw bytes."""
        found = self._reversed(buf, lo, hi)
        lines = hi - lo
        if lines and buf.count(b"\n", lo, hi) * 120 >= hi - lo:  # short lines only
            found += self._folded(buf, lo, hi)
        return found

    def _reversed(self, buf: bytes, lo: int, hi: int) -> list[Span]:
        text = buf[lo:hi][::-1]
        out = []
        for span in self._tokens.find(text, 0, len(text)):
            start, end = hi - span.end, hi - span.start
            out.append(Span(start, end, hi - span.mask_end, hi - span.mask_start, span.name,
                            False, span.rank))  # fmt: skip
        return out

    def _folded(self, buf: bytes, lo: int, hi: int) -> list[Span]:
        out: list[Span] = []
        for starts, pieces in _fold_runs(buf, lo, hi):
            joined = b"".join(pieces)
            offsets = list(_cumulative(pieces))
            for span in self._tokens.find(joined, 0, len(joined)):
                first = bisect.bisect_right(offsets, span.mask_start) - 1
                last = bisect.bisect_right(offsets, span.mask_end - 1) - 1
                if first == last:
                    continue  # on one line: the plain scan has it
                for index in range(first, last + 1):
                    piece_start = max(span.mask_start, offsets[index]) - offsets[index]
                    piece_end = min(span.mask_end, offsets[index] + len(pieces[index]))
                    piece_end -= offsets[index]
                    raw = starts[index]
                    out.append(Span(raw + piece_start, raw + piece_end, raw + piece_start,
                                    raw + piece_end, span.name, False, span.rank))  # fmt: skip
        return out

    # --- reported: the output holds an encoding of the secret --------------------------

    def find(self, buf: bytes, lo: int, hi: int) -> list[tuple[str, str, int]]:
        """(encoder, detector, offset) for each encoded secret in buf[lo:hi]."""
        kinds = self._trigger.kinds(buf, lo, hi)
        if not kinds:
            return []
        found: list[tuple[str, str, int]] = []
        if "base64" in kinds:
            found += self._base64(buf, lo, hi)
        if "hex" in kinds:
            found += self._hex(buf, lo, hi)
        if "dump" in kinds:
            found += self._dumps(buf, lo, hi)
        return found

    def _decoded(self, encoder: str, data: bytes, offset: int) -> list[tuple[str, str, int]]:
        if data[:2] == b"\x1f\x8b":
            try:
                data = zlib.decompressobj(wbits=47).decompress(data, MAX_DECODED)
                encoder += "+gzip"
            except zlib.error:
                pass
        names = dict.fromkeys(s.name for s in self._secrets.find(data, 0, len(data)))
        return [(encoder, name, offset) for name in names]

    def _base64(self, buf: bytes, lo: int, hi: int) -> list[tuple[str, str, int]]:
        found: list[tuple[str, str, int]] = []
        for start, text in _base64_blobs(buf, lo, hi):
            if not (re.search(rb"[a-z]", text) and re.search(rb"[A-Z]", text)):
                continue  # hex, or a word in capitals: not base64 of anything
            try:
                data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                continue
            found += self._decoded("base64", data, start)
        return found

    def _hex(self, buf: bytes, lo: int, hi: int) -> list[tuple[str, str, int]]:
        found: list[tuple[str, str, int]] = []
        for match in _HEX_RUN.finditer(buf, lo, hi):
            data = bytes.fromhex(match.group().decode("ascii"))
            if _printable(data):
                found += self._decoded("hex", data, match.start())
        return found

    def _dumps(self, buf: bytes, lo: int, hi: int) -> list[tuple[str, str, int]]:
        found: list[tuple[str, str, int]] = []
        for encoder, start, data in _dump_blocks(buf, lo, hi):
            found += self._decoded(encoder, data, start)
        return found


class _Trigger:
    """Which decoders are worth running on a region (one Hyperscan pass, first hits only)."""

    _PATTERNS = ((b"base64", rb"[A-Za-z0-9+/]{20}"), (b"hex", rb"[0-9A-Fa-f]{32}"))

    def __init__(self) -> None:
        self._db = None
        if _hs is not None:
            self._db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            self._db.compile(
                expressions=[p for _, p in self._PATTERNS],
                ids=list(range(len(self._PATTERNS))),
                flags=[_hs.HS_FLAG_SINGLEMATCH] * len(self._PATTERNS),
            )
            self._scratch = _hs.Scratch(self._db)

    def kinds(self, buf: bytes, lo: int, hi: int) -> set[str]:
        kinds: set[str] = set()
        if self._db is None:
            for name, pattern in self._PATTERNS:
                if re.search(pattern, buf[lo:hi]):
                    kinds.add(name.decode())
        else:
            names = [name.decode() for name, _ in self._PATTERNS]

            def on_match(id_: int, start: int, end: int, flags: int, context: Any) -> None:
                kinds.add(names[id_])

            self._db.scan(buf[lo:hi], match_event_handler=on_match, scratch=self._scratch)
        if (
            "hex" in kinds or "base64" in kinds or b" " in buf[lo : lo + 1]
        ) and _DUMP_TRIGGER.search(buf, lo, hi):
            kinds.add("dump")
        return kinds


_TRIGGER = _Trigger()


def _printable(data: bytes) -> bool:
    text = sum(1 for c in data if 0x20 <= c < 0x7F or c in (9, 10, 13))
    return text >= 0.9 * len(data)


def _lines(buf: bytes, lo: int, hi: int) -> Iterator[tuple[int, bytes]]:
    pos = lo
    while pos < hi:
        end = buf.find(b"\n", pos, hi)
        end = hi if end < 0 else end
        yield pos, buf[pos:end]
        pos = end + 1


def _base64_blobs(buf: bytes, lo: int, hi: int) -> Iterator[tuple[int, bytes]]:
    """Base64 text: runs within a line, and runs of whole lines of one width (base64 -w N)."""
    block: list[bytes] = []
    block_start = -1
    width = 0
    for start, line in _lines(buf, lo, hi):
        whole = _B64_LINE.fullmatch(line)
        if whole is not None and (not block or len(whole.group(1)) <= width):
            if not block:
                block_start, width = start + whole.start(1), len(whole.group(1))
            block.append(whole.group(1))
            if len(whole.group(1)) < width or whole.group(1).endswith(b"="):
                yield block_start, b"".join(block)
                block = []
            continue
        if block:
            yield block_start, b"".join(block)
            block = []
        for match in _B64_RUN.finditer(line):
            yield start + match.start(), match.group()
    if block:
        yield block_start, b"".join(block)


def _dump_bytes(kind: str, groups: bytes) -> bytes:
    if kind == "chars":
        out = bytearray()
        for cell in re.findall(rb"   ([ -~])|  (\\[0-7nrtabfv0]{1,3})", groups):
            if cell[0]:
                out += cell[0]
            else:
                escape = cell[1]
                out += _ESCAPES.get(
                    escape, bytes([int(escape[1:], 8)]) if escape[1:].isdigit() else b"?"
                )
        return bytes(out)
    hexes = groups.split()
    if kind == "le16":
        return b"".join(bytes.fromhex(h.decode())[::-1] for h in hexes if len(h) == 4)
    return bytes.fromhex(b"".join(hexes).decode())


def _dump_blocks(buf: bytes, lo: int, hi: int) -> Iterator[tuple[str, int, bytes]]:
    """(encoder, offset of the first line, bytes) for each run of hex dump lines of one kind."""
    current: tuple[str, str] | None = None
    start = -1
    data = bytearray()
    for line_start, line in _lines(buf, lo, hi):
        line = line.rstrip(b"\r")
        for encoder, pattern, kind in _DUMPS:
            match = pattern.fullmatch(line)
            if match is not None:
                try:
                    decoded = _dump_bytes(kind, match.group(1))
                except ValueError:
                    continue
                if current != (encoder, kind):
                    if data and current is not None:
                        yield current[0], start, bytes(data)
                    current, start, data = (encoder, kind), line_start, bytearray()
                data += decoded
                break
        else:
            if data and current is not None:
                yield current[0], start, bytes(data)
            current, data = None, bytearray()
    if data and current is not None:
        yield current[0], start, bytes(data)


def _fold_runs(buf: bytes, lo: int, hi: int) -> Iterator[tuple[list[int], list[bytes]]]:
    """Runs of two or more lines of one width (64 or less) and the shorter line that ends them."""
    starts: list[int] = []
    lines: list[bytes] = []
    pos = lo
    for line in buf[lo:hi].split(b"\n"):
        starts.append(pos)
        lines.append(line[:-1] if line.endswith(b"\r") else line)
        pos += len(line) + 1
    index = 0
    count = len(lines)
    while index < count:
        width = len(lines[index])
        end = index + 1
        while end < count and len(lines[end]) == width:
            end += 1
        if 1 <= width <= 64 and end - index >= 2:
            if end < count and 0 < len(lines[end]) < width:
                end += 1
            yield starts[index:end], lines[index:end]
        index = end


def _cumulative(pieces: list[bytes]) -> Iterator[int]:
    total = 0
    for piece in pieces:
        yield total
        total += len(piece)


class CompressedStream:
    """A stream that is one compressed file (gzip -c, bzip2 -c, xz -c): decompressed as it
    goes by (bounded), and scanned for secrets. Never changes the stream."""

    MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))

    def __init__(self, scanner: Scanner, head: bytes) -> None:
        self.encoder = next(name for magic, name in self.MAGIC if head.startswith(magic))
        if self.encoder == "gzip":
            self._decompressor: Any = zlib.decompressobj(wbits=47)
        elif self._encoder_is("bzip2"):
            self._decompressor = bz2.BZ2Decompressor()
        else:
            self._decompressor = lzma.LZMADecompressor()
        self._scanner = Scanner(
            [d for d in scanner.detectors if d.group in ("cloud-keys", "credentials")]
        )
        self._tail = b""
        self._produced = 0
        self.done = False
        self.found: list[str] = []

    def _encoder_is(self, name: str) -> bool:
        return self.encoder == name

    @classmethod
    def starts(cls, head: bytes) -> bool:
        return any(head.startswith(magic) for magic, _ in cls.MAGIC)

    def feed(self, data: bytes) -> list[str]:
        """Decompress more of the stream; the detectors that found something new."""
        if self.done:
            return []
        try:
            room = MAX_DECODED - self._produced
            plain = self._decompressor.decompress(data, room) if room > 0 else b""
        except (zlib.error, OSError, EOFError, lzma.LZMAError):
            self.done = True
            return []
        self._produced += len(plain)
        if self._produced >= MAX_DECODED:
            self.done = True
        text = self._tail + plain
        names = [s.name for s in self._scanner.find(text, 0, len(text))]
        self._tail = text[-4096:]
        new = [n for n in dict.fromkeys(names) if n not in self.found]
        self.found += new
        return new
