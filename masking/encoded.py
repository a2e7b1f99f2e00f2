"""Secrets passed through an encoder or a transformation on their way out.

    >>> from masking.table import BUILTIN
    >>> enc = EncodedScanner(BUILTIN)
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
import bz2
import lzma
import re
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from masking.builtins import Span
from masking.engine import HyperscanPrefilter, RegexPrefilter, Scanner, _hs
from masking.table import Detector

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
    ("hex (od -An -tx1)", re.compile(rb" ?((?:[0-9a-f]{2} ){3,31}[0-9a-f]{2})"), "be"),
    ("od -c", re.compile(rb"[0-7]{7}((?:   [ -~]|  \\[0nrtabfv]| [0-7]{3}){1,16})"), "chars"),
)
_ESCAPES = {b"\\n": b"\n", b"\\t": b"\t", b"\\r": b"\r", b"\\0": b"\0"}
MAX_DECODED = 4 * 1024 * 1024  # bytes of one stream a decompressor may produce


class EncodedScanner:
    """Looks at decided text for reversed, folded and encoded secrets."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self._tokens = [
            (rank, d)
            for rank, d in enumerate(detectors)
            if d.kind == "token" and all(t.literal for t in d.triggers)
        ]
        # One pass finds both: a token's keywords forwards (folded tokens) and backwards (rev).
        self._keywords: list[tuple[bool, int, int]] = []  # (reversed, token index, length)
        literals: list[bytes] = []
        for index, (_, detector) in enumerate(self._tokens):
            for trigger in detector.triggers:
                assert trigger.literal is not None
                for backwards in (False, True):
                    if len(trigger.literal) < 3 or (
                        not backwards and _WEAK.fullmatch(trigger.literal)
                    ):
                        continue  # too common a word to follow across line breaks
                    self._keywords.append((backwards, index, len(trigger.literal)))
                    literals.append(trigger.literal[::-1] if backwards else trigger.literal)
        forwards = [
            lit for lit, (back, _, _) in zip(literals, self._keywords, strict=True) if not back
        ]
        self._prefixes = {lit[:k] for lit in forwards for k in range(1, len(lit) + 1)}
        self._longest = max((len(lit) for lit in literals), default=0)
        keys = [(literal, None, True) for literal in literals]
        self._prefilter: HyperscanPrefilter | RegexPrefilter = RegexPrefilter(keys)
        if _hs is not None and keys:
            self._prefilter = HyperscanPrefilter(keys)
        # What the main scan looks for on our behalf (Scanner(extra=...)): reversed keywords,
        # and two short lines of token characters in a row, the only place a fold can be.
        self._reversed_ids = [i for i, (back, _, _) in enumerate(self._keywords) if back]
        self.extra = [(literals[i], None, True) for i in self._reversed_ids]
        self.extra.append((None, _FOLD_RUN, False))
        self._secrets = Scanner([d for d in detectors if d.group in ("cloud-keys", "credentials")])
        self._trigger = _TRIGGER

    # --- masked: the secret's bytes are all there ------------------------------------

    def spans(
        self,
        buf: bytes,
        lo: int,
        hi: int,
        final: bool = True,
        extra_hits: list[tuple[int, int]] | None = None,
    ) -> list[Span]:
        """Findings in reversed text and in tokens cut by line breaks, on the raw bytes.

        The keywords are looked for in the text with its line breaks taken out: a
        folded token's keyword may itself be cut in two."""
        if extra_hits is not None:  # the main scan looked already: only where it found something
            return self._from_hits(buf, lo, hi, final, extra_hits)
        return self._scan(buf, lo, hi, final)

    def _from_hits(
        self, buf: bytes, lo: int, hi: int, final: bool, extra_hits: list[tuple[int, int]]
    ) -> list[Span]:
        out: list[Span] = []
        fold_run = len(self._reversed_ids)
        folds = False
        for index, to in extra_hits:
            if index == fold_run:
                folds = True
                continue
            _, token, length = self._keywords[self._reversed_ids[index]]
            rank, detector = self._tokens[token]
            out += _reversed_at(detector, rank, buf, lo, hi, to, length)
        if folds:
            out += self._scan(buf, lo, hi, final)
        return out

    def _scan(self, buf: bytes, lo: int, hi: int, final: bool) -> list[Span]:
        region = buf[lo:hi]
        folded = b"\n" in region
        joined = region.replace(b"\n", b"") if folded else region
        out: list[Span] = []
        if folded and not final:
            out += self._may_continue(region, joined)
        done = -1
        for id_, _, to in self._prefilter.hits(joined, 0, len(joined)):
            backwards, index, length = self._keywords[id_]
            rank, detector = self._tokens[index]
            if backwards:
                end = lo + (_unjoined(region, to) if folded else to)
                out += _reversed_at(detector, rank, buf, lo, hi, end, length)
            elif folded:
                start = _unjoined(region, to - length)
                if start <= done:
                    continue
                for span in _rejoined(detector, region, start, rank, final):
                    out.append(Span(lo + span.start, lo + span.end, lo + span.mask_start,
                                    lo + span.mask_end, span.name, False, span.rank))  # fmt: skip
                    done = max(done, span.end)
        return out

    def _may_continue(self, region: bytes, joined: bytes) -> list[Span]:
        """The region ends with short lines whose last bytes start a keyword (`gh`, then `p_`
        on the next line): hold them back until the next lines show whether a token follows."""
        if not _fold_signature(region):
            return []
        tail = joined[-self._longest :].lower()
        for size in range(len(tail), 0, -1):
            if tail[-size:] in self._prefixes:
                start = _unjoined(region, len(joined) - size)
                line = region.rfind(b"\n", 0, start) + 1
                if region.find(b"\n", start) - line <= FOLD_WIDTH:
                    end = len(region)
                    return [Span(line, end + 1, end, end, "", False, 0)]
        return []

    # --- reported: the output holds an encoding of the secret --------------------------

    def find(self, buf: bytes, lo: int, hi: int) -> list[tuple[str, str, int]]:
        """(encoder, detector, offset) for each encoded secret in buf[lo:hi]."""
        hits = self._trigger.hits(buf, lo, hi)
        if not hits:
            return []
        found: list[tuple[str, str, int]] = []
        for start, text in _base64_blobs(buf, lo, hi, hits):
            encoder, data = _decode_base(text)
            if data:
                found += self._decoded(encoder, data, start)
        for start, text in _hex_blobs(buf, hits):
            try:
                data = bytes.fromhex(text.decode("ascii"))
            except ValueError:
                continue
            if _printable(data):
                found += self._decoded("hex", data, start)
        if "dump" in hits:
            dump_start = buf.rfind(b"\n", lo, hits["dump"][0][1]) + 1 or lo
            for encoder, start, data in _dump_blocks(buf, dump_start, hi):
                found += self._decoded(encoder, data, start)
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


_TOKEN_RUN = re.compile(rb"[A-Za-z0-9_.+/=~-]*")
_FOLD_RUN = rb"(?:^|\n)[A-Za-z0-9_.+/=~-]{1,40}\r?\n[A-Za-z0-9_.+/=~-]{1,40}\r?(?:\n|$)"
FOLD_WIDTH = 40  # lines this short or shorter may be pieces of a folded token
_WEAK = re.compile(rb"key-|api-|pat\.|sat\.|sig=|code=|secret_")  # words, not token prefixes


def _rejoined(
    detector: Detector, region: bytes, start: int, rank: int, final: bool = True
) -> list[Span]:
    """The detector's token at `start`, put back together from the lines it was cut into:
    one Span per piece. Empty if the token is whole on its line or not a token at all."""
    assert detector.regex is not None
    line_end = region.find(b"\n", start)
    if line_end < 0 or detector.regex.match(region, start, line_end) is not None:
        return []  # whole on one line: the plain scan has it
    line_start = region.rfind(b"\n", 0, start) + 1
    if line_end - line_start > FOLD_WIDTH or b"-----" in region[line_start:line_end]:
        return []  # not a fold: base64 (76), PEM (64) and xxd -p (60) lines are wider
    pieces: list[tuple[int, int]] = []
    pos, size = start, 0
    while size < detector.width:
        end = region.find(b"\n", pos)
        if end < 0:  # the region ends before the token does: hold it back, it may go on
            if final:
                break
            size = len(region)  # a finding that masks nothing and ends past the region
            return [Span(start, size + 1, size, size, detector.name, False, rank)]
        stop = end - 1 if region[end - 1 : end] == b"\r" else end
        run = _TOKEN_RUN.match(region, pos, stop).end()  # type: ignore[union-attr]
        pieces.append((pos, run))
        size += run - pos
        if run < stop or stop - pos > FOLD_WIDTH:
            break  # the token ends on this line
        pos = end + 1
    if len(pieces) < 2:
        return []
    texts = [region[a:b] for a, b in pieces]
    joined = b"".join(texts)
    offsets = list(_cumulative(texts))
    for endpos in [*offsets[2:], len(joined)]:  # shortest first, crossing at least one break
        match = detector.regex.match(joined, 0, endpos)
        if match is None or match.end() <= offsets[1]:
            continue
        mask_start, mask_end = detector.secret_span(match)
        if detector.checks and not detector.accepts(joined[mask_start:mask_end]):
            continue
        out = []
        for (piece_start, piece_end), offset in zip(pieces, offsets, strict=True):
            first = max(mask_start, offset) - offset
            last = min(mask_end, offset + piece_end - piece_start) - offset
            if last > first:
                out.append(Span(piece_start + first, piece_start + last, piece_start + first,
                                piece_start + last, detector.name, False, rank))  # fmt: skip
        return out
    return []


def _fold_signature(region: bytes) -> bool:
    """The last two whole lines are of one width, FOLD_WIDTH or less: what fold leaves."""
    end = region.rfind(b"\n")
    middle = region.rfind(b"\n", 0, end) if end > 0 else -1
    if middle < 0:
        return False
    first = region.rfind(b"\n", 0, middle) + 1
    width = end - middle - 1
    return 0 < width <= FOLD_WIDTH and middle - first == width


def _unjoined(region: bytes, end: int) -> int:
    """The offset in region of offset `end` of region.replace(b"\\n", b"")."""
    at = end
    counted = 0
    while True:
        breaks = region.count(b"\n", 0, at)
        if breaks == counted:
            return at
        at, counted = end + breaks, breaks


def _reversed_at(
    detector: Detector, rank: int, buf: bytes, lo: int, hi: int, to: int, length: int
) -> list[Span]:
    """A token printed backwards (`rev`) whose reversed keyword ends at `to`: only the bytes
    before the hit are turned around and matched."""
    assert detector.regex is not None
    line = buf.rfind(b"\n", lo, to - length) + 1 or lo
    start = max(line, to - detector.width)
    window = buf[start : min(hi, to + 1)][::-1]
    skip = 1 if to < hi else 0
    match = detector.regex.match(window, skip)
    if match is None:
        return []
    mask_start, mask_end = detector.secret_span(match)
    if detector.checks and not detector.accepts(window[mask_start:mask_end]):
        return []
    shift = to if skip else to - 1  # window[k] is buf[shift - k]
    return [Span(shift - match.end() + 1, shift - match.start() + 1, shift - mask_end + 1,
                 shift - mask_start + 1, detector.name, False, rank)]  # fmt: skip


class _Trigger:
    """Where base64 or hex text and hex dumps are: one Hyperscan pass, or re without it.

    `hits()` maps a kind to the (start, end) of each candidate: a whole line of
    base64 or hex (base64, base64 -w0, xxd -p print those), the first dump line.
    Base64 inside a line of other text is not decoded: where a key names it, it is
    masked as a secret value already."""

    _PATTERNS = (
        ("line", rb"(?m)^[ \t]*[A-Za-z0-9+/]{16,}={0,6}[ \t\r]*$"),
        (
            "dump",
            rb"(?m)^(?:[0-7a-f]{6,8}:? {1,3}(?:[0-9a-f]{2,6} |[ -~]   |\\[0nrt]  )| (?:[0-9a-f]{2} ){7}[0-9a-f]{2})",
        ),
    )

    def __init__(self) -> None:
        self._db = None
        self._regexes = [(kind, re.compile(p)) for kind, p in self._PATTERNS]
        if _hs is not None:
            self._db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            # Whole lines: an end is reported once per line, and the line is found from it.
            flags = [_hs.HS_FLAG_MULTILINE, _hs.HS_FLAG_MULTILINE | _hs.HS_FLAG_SINGLEMATCH]
            self._db.compile(
                expressions=[p.replace(b"(?m)", b"") for _, p in self._PATTERNS],
                ids=list(range(len(self._PATTERNS))),
                flags=flags,
            )
            self._scratch = _hs.Scratch(self._db)

    def hits(self, buf: bytes, lo: int, hi: int) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = {}
        if self._db is None:
            for kind, regex in self._regexes:
                for match in regex.finditer(buf, lo, hi):
                    found.setdefault(kind, []).append(match.span())
            return found
        kinds = [kind for kind, _ in self._PATTERNS]
        region = buf[lo:hi]

        def on_match(id_: int, start: int, end: int, flags: int, context: Any) -> None:
            line_start = region.rfind(b"\n", 0, end) + 1
            found.setdefault(kinds[id_], []).append((lo + line_start, lo + end))

        self._db.scan(region, match_event_handler=on_match, scratch=self._scratch)
        return {kind: _trimmed(buf, spans) for kind, spans in found.items()}


def _trimmed(buf: bytes, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Candidate spans without the delimiters around them, each once."""
    out = {}
    for start, end in spans:
        while start < end and buf[start] in b" \t\r\n:=\"',;":
            start += 1
        while end > start and buf[end - 1] in b" \t\r\n\"',;":
            end -= 1
        out[start] = max(out.get(start, end), end)
    return sorted(out.items())


_TRIGGER = _Trigger()


_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r"


def _printable(data: bytes) -> bool:
    return len(data.translate(None, _TEXT_BYTES)) * 10 <= len(data)


def _lines(buf: bytes, lo: int, hi: int) -> Iterator[tuple[int, bytes]]:
    pos = lo
    while pos < hi:
        end = buf.find(b"\n", pos, hi)
        end = hi if end < 0 else end
        yield pos, buf[pos:end]
        pos = end + 1


def _base64_blobs(
    buf: bytes, lo: int, hi: int, hits: dict[str, list[tuple[int, int]]]
) -> Iterator[tuple[int, bytes]]:
    """Base64 text worth decoding: runs of whole lines of one width (joined), and runs after a
    delimiter; mixed case (hex and words in capitals are not base64 of anything)."""
    blocks: list[tuple[int, int, list[bytes]]] = []  # (start, end of last line, lines)
    for start, end in hits.get("line", ()):
        line = buf[start:end].strip(b" \t\r")
        if (
            blocks
            and buf[blocks[-1][1] : start].strip(b" \t\r\n") == b""
            and (len(line) <= len(blocks[-1][2][0]) and not blocks[-1][2][-1].endswith(b"="))
        ):
            blocks[-1][2].append(line)
            blocks[-1] = (blocks[-1][0], end, blocks[-1][2])
        else:
            blocks.append((start, end, [line]))
    for start, _, lines in blocks:
        yield from _mixed(start, b"".join(lines))


def _hex_blobs(buf: bytes, hits: dict[str, list[tuple[int, int]]]) -> Iterator[tuple[int, bytes]]:
    """Runs of whole lines of hex digits (xxd -p), joined."""
    start, parts, last_end = -1, [], -1
    for line_start, end in hits.get("line", ()):
        line = buf[line_start:end].strip(b" \t\r")
        if len(line) < (2 if parts else 32) or line.strip(b"0123456789abcdefABCDEF"):
            continue
        if parts and buf[last_end:line_start].strip(b"\r\n") == b"":
            parts.append(line)
        else:
            if parts:
                yield start, b"".join(parts)
            start, parts = line_start, [line]
        last_end = end
    if parts:
        yield start, b"".join(parts)


def _mixed(start: int, text: bytes) -> Iterator[tuple[int, bytes]]:
    if len(text) >= 16 and _UPPER.search(text) and (_LOWER.search(text) or _BASE32.fullmatch(text)):
        yield start, text


_BASE32 = re.compile(rb"[A-Z2-7]+=*")


def _decode_base(text: bytes) -> tuple[str, bytes]:
    """(encoder, bytes): base32 for text in its alphabet, else base64; b"" if neither."""
    if _BASE32.fullmatch(text) and len(text.rstrip(b"=")) * 5 % 8 < 5:
        try:
            return "base32", base64.b32decode(text + b"=" * (-len(text) % 8))
        except (binascii.Error, ValueError):
            pass
    try:
        return "base64", base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "base64", b""


_LOWER = re.compile(rb"[a-z]")
_UPPER = re.compile(rb"[A-Z]")


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
