"""The streaming masker: bytes in, masked bytes out, whatever the reads look like.

Where the stream may be cut. No built-in finding spans a line break and none
is longer than MAX_MATCH, so everything up to the last newline can be
decided and sent; the partial line after it is held back (a secret may be
starting there) until the next read completes it, or it grows past WINDOW
bytes (then all but the last WINDOW bytes are decided: a finding that starts
before that point is already whole), or `flush()` is called. Cut this way,
the output is the same for every way of splitting the input into reads
(`feed(a); feed(b); flush()` == `feed(a + b); flush()`).

The bastion calls `flush()` when a channel has been idle for a short delay
(40 ms by default), so prompts and echoed keys are not held longer than
that. A secret whose two halves arrive further apart than the delay is cut
by that flush: its first half has been sent as it was. The line holding it
is then rescanned as more arrives (up to WINDOW bytes back), and the rest of
the secret is masked if a detector still recognises the whole; a secret so
short that neither half is recognisable goes through.

Binary output. Text may hold NUL bytes (`/proc/*/environ`, `find -print0`)
and is masked like any other text. The stream turns binary at the first
control byte that text does not use (0x01-0x06, 0x0E-0x1A, 0x1C-0x1F) or
the first two NULs in a row: every archive, image, executable or compressed
stream shows one within its first bytes. From there, with `binary="pass"`,
bytes go through untouched (masking them could corrupt a file, and a
replacement of different length shifts every offset after it) and
`binary_at` says where that began so the caller can record it; with
`binary="stop"` nothing more is returned; with `binary="mask"` there is no
binary mode at all.

What that costs: a command that prints such a byte before a secret gets the
secret past the masker, and the switch is the only trace. This is no easier
than `| base64` or `| rev`, which no masker can follow; masking keeps
secrets from being shown by accident, and deliberate exfiltration is for
rules and alerts to catch. Callers that never carry binary (terminals,
agents that should only read text) use `binary="mask"` or `"stop"`.

Memory is bounded: at most WINDOW bytes of partial line, plus the line's
already-sent start (for rescans, also at most WINDOW), plus one read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rules.masking.detectors import BUILTIN, CLASSES, MAX_MATCH, Detector, Region, Span, grouped
from rules.masking.keyblock import KeyBlock

WINDOW = MAX_MATCH + 64
BINARY_POLICIES = ("pass", "mask", "stop")


def marker(name: str) -> bytes:
    return b"[MASKED:" + name.encode("ascii", "replace") + b"]"


class Masker:
    """Mask one stream. Not thread-safe; one instance per direction of a channel.

    >>> m = Masker()
    >>> m.feed(b"key AKIAIOSF") + m.feed(b"ODNN7EXAMPLE ok\\n")
    b'key [MASKED:aws-access-key] ok\\n'
    >>> dict(m.counts)
    {'aws-access-key': 1}
    """

    def __init__(self, detectors: Sequence[Detector] = BUILTIN, *, binary: str = "pass") -> None:
        if binary not in BINARY_POLICIES:
            raise ValueError(f"binary must be one of {', '.join(BINARY_POLICIES)}")
        self._detectors = grouped(detectors)
        self._anchors = tuple({d.anchor for d in self._detectors if d.anchor is not None})
        self._binary_policy = binary
        self._markers = {d.name: marker(d.name) for d in detectors}
        self._buf = b""  # already-sent start of the current line, then the held bytes
        self._start = 0  # index in _buf of the first byte not yet sent
        self._sent = 0  # stream offset of _buf[0]
        self._dirty = False  # part of the current line went out on a flush
        self._key: KeyBlock | None = None
        self.counts: Counter[str] = Counter()
        self.binary_at: int | None = None  # stream offset where pass-through began

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for more input or a flush."""
        return len(self._buf) - self._start

    def feed(self, data: bytes) -> bytes:
        """Mask `data`; returns what can be sent now (maybe less, maybe more, than given)."""
        if self.binary_at is not None:
            return data if self._binary_policy == "pass" else b""
        if not data:
            return b""
        return self._run(self._buf + data if self._buf else data, final=False)

    def flush(self) -> bytes:
        """Release what is held: call when the stream is idle and when it ends."""
        if self.binary_at is not None or not self.pending:
            return b""
        return self._run(self._buf, final=True)

    # --- one round -----------------------------------------------------------------

    def _run(self, buf: bytes, *, final: bool) -> bytes:
        out: list[bytes] = []
        start = self._start
        classes = buf[start:].translate(CLASSES)
        if self._binary_policy != "mask":
            cut = _binary_start(buf, start, classes)
            if cut is not None:
                return self._turn_binary(buf, cut, classes, out)
        pos = self._process(buf, start, final, classes, start, out)
        self._keep(buf, pos)
        return b"".join(out)

    def _turn_binary(self, buf: bytes, cut: int, classes: bytes, out: list[bytes]) -> bytes:
        """Text before the first binary byte is masked and sent; the rest passes (or stops)."""
        text = buf[:cut]
        self._process(text, self._start, True, classes, self._start, out)
        self.binary_at = self._sent + cut
        if self._binary_policy == "pass":
            out.append(buf[cut:])
        self._buf, self._start, self._key = b"", 0, None
        return b"".join(out)

    def _process(
        self, buf: bytes, pos: int, final: bool, classes: bytes, classes_lo: int, out: list[bytes]
    ) -> int:
        """Alternate between text and key blocks until the data runs out or must wait."""
        while pos < len(buf):
            if self._key is not None:
                pos, inside = self._key.consume(buf, pos, final)
                if inside:
                    break
                if self._key.aborted:
                    out.append(self._key.eol)
                self._key = None
                continue
            pos = self._text(buf, pos, final, classes, classes_lo, out)
            if self._key is None:
                break
        return pos

    def _text(
        self, buf: bytes, pos: int, final: bool, classes: bytes, classes_lo: int, out: list[bytes]
    ) -> int:
        """Mask and send text from `pos` up to the furthest point that is decided."""
        n = len(buf)
        if final:
            cut = n
        else:
            newline = buf.rfind(b"\n", pos)
            cut = newline + 1 if newline >= 0 else pos
            if n - cut > WINDOW:
                cut = n - WINDOW
        if cut <= pos:
            return pos
        lo = pos
        if self._dirty:  # rescan the line whose start went out on a flush
            lo = buf.rfind(b"\n", 0, pos) + 1
        region = Region(buf, lo, n, classes, classes_lo)
        absent = {anchor for anchor in self._anchors if buf.find(anchor, lo, n) < 0}
        spans = [
            span
            for detector in self._detectors
            if detector.anchor not in absent
            for span in detector.find(region)
            if span.mask_end > pos and span.start < cut
        ]
        spans.sort(key=lambda span: (span.start, -span.end))
        cut, spans = _settle(spans, pos, cut, n)
        cursor = pos
        for span in sorted(spans, key=lambda span: (span.mask_start, -span.mask_end)):
            mask_start, mask_end = max(span.mask_start, cursor), min(span.mask_end, cut)
            if mask_end <= cursor:
                continue  # inside a finding already masked
            self.counts[span.name] += 1
            out.append(buf[cursor:mask_start])
            out.append(self._markers.get(span.name) or marker(span.name))
            cursor = mask_end
            if span.opens_block:
                self._key = KeyBlock()
        out.append(buf[cursor:cut])
        if self._key is not None or (cut > pos and buf[cut - 1 : cut] == b"\n"):
            self._dirty = False
        elif final and cut > pos:
            self._dirty = True
        return cut

    def _keep(self, buf: bytes, pos: int) -> None:
        """Keep the unsent bytes, and the sent start of their line (bounded) for rescans."""
        line = buf.rfind(b"\n", max(0, pos - WINDOW), pos)
        keep_from = line if line >= 0 else max(0, pos - WINDOW)
        self._sent += keep_from
        self._buf = buf[keep_from:]
        self._start = pos - keep_from


def _settle(spans: list[Span], pos: int, cut: int, n: int) -> tuple[int, list[Span]]:
    """Move the cut off any finding it would split; stop after a key block's BEGIN.

    A finding that starts after `pos` and crosses the cut pulls the cut back
    to its start (it will be decided whole on the next round). One that
    started before `pos` (its head went out on a flush) is masked from `pos`
    to its end. A run of text longer than 2 x WINDOW with a finding across
    every candidate cut (possible only with a custom pattern) is cut anyway.
    """
    for _ in range(len(spans) + 1):
        crossing = [s for s in spans if s.start < cut < s.end]
        if not crossing:
            break
        span = crossing[0]
        cut = span.start if span.start > pos else span.end
    if cut <= pos and n - pos > 2 * WINDOW:
        cut = n - WINDOW
    kept = []
    for span in spans:
        if span.start >= cut and span.mask_start >= cut:
            continue
        kept.append(span)
        if span.opens_block:
            cut = max(pos, min(cut, span.end))
            break
    return cut, kept


def _binary_start(buf: bytes, start: int, classes: bytes) -> int | None:
    """Offset in buf of the first byte that makes the stream binary, if any."""
    control = classes.find(b"c")
    nuls = -1
    if classes.find(b"\0") >= 0:  # memchr first: a two-byte search is 40 times slower
        nuls = buf.find(b"\0\0", max(0, start - 1))  # the first NUL may have gone out already
    found = [at for at in (start + control if control >= 0 else -1, nuls) if at >= 0]
    return max(start, min(found)) if found else None
