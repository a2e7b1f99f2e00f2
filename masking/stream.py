"""The streaming masker: bytes in, masked bytes out, whatever the reads look like.

    >>> m = Masker()
    >>> m.feed(b"key AKIAIOSF") + m.feed(b"ODNN7EXAMPLE ok\\n")
    b'key [MASKED:aws-access-key] ok\\n'
    >>> dict(m.counts)
    {'aws-access-key': 1}

Where the stream may be cut. No built-in finding spans a line break and none
is longer than MAX_MATCH, so everything up to the last newline can be
decided and sent; the partial line after it is held back (a secret may be
starting there) until the next read completes it, or it grows past WINDOW
bytes (then all but the last WINDOW bytes are decided), or it is released.
Cut this way, the output is the same for every way of splitting the input
into reads (`feed(a); feed(b); flush()` == `feed(a + b); flush()`).

Releasing a held tail. `deadline()` says when the held bytes must go out,
and `release(now)` sends them then. A tail that could be the start of a
secret (a known token prefix with its random part begun, a secret-named
key whose value has begun, five digits or more, an address after its `@`,
a BEGIN line, a long token-like run) waits `hold` seconds for the rest to
arrive; any other tail, typed echo among them, waits only `echo` seconds
(0: it goes out at once, within `feed`). The trade-off: a secret whose
output pauses longer than `echo` before anything shows it is a secret (in an
address's local part, in the first four digits of a card, in a bare token
without a known prefix) has that first piece sent as it was; the line is
rescanned as the rest arrives, and the rest is masked if the detector still
recognises the whole. Public prefixes (`AKIA`, `ghp_`) going out early
reveal nothing.

What is scanned. The raw bytes, and for lines holding escape sequences,
zero-width characters, invisible controls or NULs, their projection (see
projection.py): the view with those removed (which also decodes UTF-16/32
text) and, where backspaces, carriage returns or cursor moves occur, the
line as a terminal renders it. A finding in a view masks every raw byte
that produced it.

Binary output. The stream turns binary at the first control byte text does
not use (0x01-0x06, 0x0E-0x1A, 0x1C-0x1F) or two NULs in a row (`binary_at`
says where; an event records it). It is still scanned. With `binary="mask"`
a finding is overwritten by a marker of the same length (offsets in the
file stay put); with `"pass"` it is reported and left as it is; with
`"stop"` the output ends before it (`stopped` is set). `modify=False` (file
transfers) reports secrets and never changes a byte, text or binary; personal
data in transferred files is ordinary and not reported. In binary output
personal data counts only where it is written as text (12 or more printable
ASCII bytes, or UTF-16/32): random bytes spell `P@T.Ebn` about twice a MB.
Terminals (`terminal=True`) never turn binary: everything is masked as text.

Memory is bounded: at most WINDOW bytes of partial line, plus the line's
already-sent start (for rescans, also at most WINDOW), plus one read.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence

from masking import projection
from masking.builtins import Span
from masking.encoded import CompressedStream, EncodedScanner
from masking.engine import Scanner
from masking.events import BinaryOutput, EncodedSecret, Event, Found, Stopped
from masking.keyblock import KeyBlock
from masking.table import BUILTIN, MAX_MATCH, Detector

WINDOW = MAX_MATCH + 64
BINARY_POLICIES = ("mask", "pass", "stop")
DEFAULT_HOLD = 0.040
DEFAULT_ECHO = 0.005


def marker(name: str) -> bytes:
    return b"[MASKED:" + name.encode("ascii", "replace") + b"]"


def fill(name: str, size: int) -> bytes:
    """A marker of exactly `size` bytes, for binary output (offsets must not move)."""
    text = marker(name)
    return text + b"*" * (size - len(text)) if len(text) <= size else b"*" * size


# A tail that could be a secret starting: see the module docstring. Each check is anchored
# (a match at a known place, never a search): this runs on every read that leaves a tail.
_EMAIL_OPEN = re.compile(rb"[A-Za-z0-9._%+\x80-\xff-]+@[A-Za-z0-9.\x80-\xff-]*")
_TOKEN_OPEN = re.compile(
    rb"(?=[A-Za-z0-9+/_.=-]*[0-9])(?=[A-Za-z0-9+/_.=-]*[A-Za-z])[A-Za-z0-9+/_.=-]{16,}"
)
_URL_OPEN = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://[^\s/@]*:[^\s/@]*")
_NUMBER_BACK = re.compile(rb"[0-9 .()+-]*")
_IBAN_BACK = re.compile(rb"[A-Z0-9 -]*")
_IBAN_OPEN = re.compile(rb"[A-Z]{2}[0-9]{2}")
_SECRET_KEY_END = re.compile(
    rb"(?i)(?:pass|pwd|secret|token|key|auth|cred|sig|session|cookie|salt|bearer|basic)"
    rb"[\w.-]{0,20}[\"'`]?[ \t]*[:=]{0,2}$"
)
_KEY_START = re.compile(rb"[A-Za-z0-9_.$@-]*")
_FLAG_OPEN = frozenset(
    b"-u -U --user --password --passwd --pass --token --secret --api-key --apikey -p".split()
)
_HEADER_WORDS = (b"authorization", b"bearer ", b"basic ", b"-----begin", b"-----")


def _open_start(text: bytes) -> int:
    """Where a secret may be starting in `text` so that it runs to the end, or -1."""
    starts: list[int] = []
    blank = max(text.rfind(b" "), text.rfind(b"\n"))
    word = blank + 1  # the last word: text[word:]
    if word < len(text):
        last = text[word:]
        if (
            _EMAIL_OPEN.fullmatch(last)
            or _TOKEN_OPEN.fullmatch(last)
            or _URL_OPEN.fullmatch(last)
            or last.startswith(b"eyJ")
        ):
            starts.append(word)
        operator = max(last.rfind(b"="), last.rfind(b":"))
        if 0 < operator < len(last) - 1 and _SECRET_KEY_END.search(last, 0, operator):
            starts.append(word)
    back = text[-40:][::-1]
    number = _NUMBER_BACK.match(back).end()  # type: ignore[union-attr]
    if sum(c in b"0123456789" for c in back[:number]) >= 5:
        starts.append(len(text) - number)
    run = _IBAN_BACK.match(back).end()  # type: ignore[union-attr]
    if run >= 4 and _IBAN_OPEN.match(text, len(text) - run):
        starts.append(len(text) - run)
    if word < len(text) and blank > 0:
        before = text.rfind(b" ", 0, blank) + 1
        previous = text[before:blank]
        if previous in _FLAG_OPEN or _SECRET_KEY_END.search(previous):
            starts.append(before)  # `password hunter2`, `-u user:pw`, `token: abc`
    lowered = text[-200:].lower()
    offset = len(text) - len(lowered)
    for needle in _HEADER_WORDS:
        at = lowered.rfind(needle)
        if at >= 0 and b"\n" not in lowered[at:] and (needle[-1:] != b" " or word > offset + at):
            starts.append(offset + at)
    return min(starts) if starts else -1


_TOKEN_CHARS = re.compile(rb"[A-Za-z0-9_.+/=~-]*\Z")
_WORD = re.compile(rb"[^ \n]*")  # tabs may sit inside a token (see the jwt detector)


def _word_start(text: bytes, pos: int) -> int:
    """The start of the word (run of non-blanks) that holds text[pos] (read backwards)."""
    back = text[max(0, pos - WINDOW) : pos][::-1]
    return pos - _WORD.match(back).end()  # type: ignore[union-attr]


class Masker:
    """Mask one stream. Not thread-safe; one instance per direction of a channel.

    `counts` totals findings by detector; `events` lists what the caller must
    report (findings, the switch to binary, encoded secrets, a stop), drained
    with `take_events()`.
    """

    def __init__(
        self,
        detectors: Sequence[Detector] = BUILTIN,
        *,
        binary: str = "mask",
        terminal: bool = False,
        modify: bool = True,
        hold: float = DEFAULT_HOLD,
        echo: float = DEFAULT_ECHO,
        engine: str = "auto",
        clock: Callable[[], float] = time.monotonic,
        encoded: bool = True,
    ) -> None:
        if binary not in BINARY_POLICIES:
            raise ValueError(f"binary must be one of {', '.join(BINARY_POLICIES)}")
        self._encoded = EncodedScanner(detectors) if encoded else None
        extra = self._encoded.extra if self._encoded is not None else ()
        self._scanner = Scanner(detectors, engine=engine, extra=extra)
        self._policy = binary
        self._terminal = terminal
        self._modify = modify
        self._hold, self._echo, self._clock = hold, echo, clock
        self._markers = {d.name: marker(d.name) for d in detectors}
        # Personal data in binary output is looked for in text only (see _is_text, _is_wide):
        # binary files hold byte runs shaped like addresses by chance (about 90
        # "e-mail addresses" in 50 MB of random bytes), and masking them would corrupt the
        # file. Secrets, with their prefixes, lengths and checksums, are not so found.
        self._text_only = frozenset(d.name for d in detectors if d.group in _PERSONAL_GROUPS)
        self._buf = b""  # already-sent start of the current line, then the held bytes
        self._start = 0  # index in _buf of the first byte not yet sent
        self._sent = 0  # stream offset of _buf[0]
        self._dirty = False  # part of the current line went out on a release
        self._key: KeyBlock | None = None
        self._deadline: float | None = None
        self.counts: Counter[str] = Counter()
        self.events: list[Event] = []
        self.binary_at: int | None = None  # stream offset where the output turned binary
        self.stopped = False
        self._fed = 0  # bytes fed so far
        self._compressed: CompressedStream | None = None
        self._controls: tuple[bytes, int, tuple[int, frozenset[str]]] = (b"", -1, (-1, frozenset()))

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for more input or their deadline."""
        return len(self._buf) - self._start

    def deadline(self) -> float | None:
        """When the held tail must be released (a `clock()` time), or None if nothing is held."""
        return self._deadline if self.pending else None

    def feed(self, data: bytes) -> bytes:
        """Mask `data`; returns what can be sent now (maybe less, maybe more, than given)."""
        if self.stopped or not data:
            return b""
        if self._encoded is not None:
            self._watch_compressed(data)
        self._fed += len(data)
        out = self._run(self._buf + data if self._buf else data, final=False)
        if self.pending:
            suspect = self._suspicious()
            if suspect > 0:  # what comes before the secret that may be starting can go now
                out += self._release_before(suspect)
            wait = self._hold if suspect >= 0 else self._echo
            if wait <= 0:
                return out + self.flush()
            self._deadline = self._clock() + wait
        return out

    def _release_before(self, offset: int) -> bytes:
        """Send the held bytes before `offset` (into the held tail), keep the rest held."""
        split = self._start + offset
        rest = self._buf[split:]
        out = self._run(self._buf[:split], final=True)
        if self.stopped:
            return out
        self._buf += rest
        return out

    def release(self, now: float | None = None) -> bytes:
        """The held tail, if its deadline has passed (call when `deadline()` comes)."""
        deadline = self.deadline()
        if deadline is None or (now if now is not None else self._clock()) < deadline:
            return b""
        return self.flush()

    def flush(self) -> bytes:
        """Release what is held now: at the end of the stream, or when the caller must."""
        self._deadline = None
        if self.stopped or not self.pending:
            return b""
        return self._run(self._buf, final=True)

    def _watch_compressed(self, data: bytes) -> None:
        """A stream that starts as a compressed file is decompressed on the side and scanned."""
        if self._fed == 0 and CompressedStream.starts(data):
            self._compressed = CompressedStream(self._scanner, data)
        if self._compressed is not None:
            for name in self._compressed.feed(data):
                self.events.append(EncodedSecret(self._compressed.encoder, name, self._fed))

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # --- one round -----------------------------------------------------------------

    def _run(self, buf: bytes, *, final: bool) -> bytes:
        out: list[bytes] = []
        start = self._start
        controls = projection.CONTROLS.find(buf, start, len(buf))
        self._controls = (buf, start, controls)  # _find reuses it for the same bytes
        if self.binary_at is None and not self._terminal:
            binary = "binary" in controls[1] or buf[start - 1 : start + 1] == b"\0\0"
            cut = _binary_start(buf, start) if binary else None
            if cut is not None:
                self._process(buf, start, cut, True, out)
                self.binary_at = self._sent + cut
                self.events.append(BinaryOutput(self.binary_at))
                self._key, self._dirty = None, False
                start = cut
        pos = self._process(buf, start, len(buf), final, out)
        self._keep(buf, pos)
        return b"".join(out)

    def _process(self, buf: bytes, pos: int, end: int, final: bool, out: list[bytes]) -> int:
        """Alternate between text and key blocks until the data runs out or must wait."""
        while pos < end and not self.stopped:
            if self._key is not None:
                pos, inside = self._key.consume(buf[:end], pos, final)
                if inside:
                    break
                if self._key.aborted:
                    out.append(self._key.eol)
                self._key = None
                continue
            pos = self._text(buf, pos, end, final, out)
            if self._key is None:
                break
        return pos

    def _text(self, buf: bytes, pos: int, end: int, final: bool, out: list[bytes]) -> int:
        """Mask and send text from `pos` up to the furthest point that is decided."""
        if final:
            cut = end
        else:
            newline = buf.rfind(b"\n", pos, end)
            cut = newline + 1 if newline >= 0 else pos
            if end - cut > WINDOW:
                cut = end - WINDOW
        if cut <= pos:
            return pos
        lo = pos
        if self._dirty:  # rescan the line whose start went out on a release
            lo = max(buf.rfind(b"\n", 0, pos) + 1, pos - WINDOW)
        spans = [s for s in self._find(buf, lo, end, final) if s.mask_end > pos and s.start < cut]
        spans.sort(key=lambda span: (span.start, -span.end, span.rank))
        cut, spans = _settle(spans, pos, cut, end)
        if self._encoded is not None and cut > pos:
            self._report_encoded(buf, pos, cut)
        cursor = pos
        binary = self.binary_at is not None
        for mask_start, mask_end, span, opens in _merged(spans, cursor, cut):
            if not self._modify and span.name in self._text_only:
                continue  # a file transfer: secrets in it are reported, personal data is not
            self.counts[span.name] += 1
            masked = self._modify and not (binary and self._policy == "pass")
            self.events.append(Found(span.name, self._sent + mask_start, masked, binary))
            if binary and self._policy == "stop" and self._modify:
                out.append(buf[cursor:mask_start])
                self.stopped = True
                self.events.append(Stopped(span.name, self._sent + mask_start))
                return end
            if not masked:
                continue
            out.append(buf[cursor:mask_start])
            if binary:
                out.append(fill(span.name, mask_end - mask_start))
            else:
                out.append(self._markers.get(span.name) or marker(span.name))
            cursor = mask_end
            if opens and not binary:
                self._key = KeyBlock()
        out.append(buf[cursor:cut])
        if self._key is not None or (cut > pos and buf[cut - 1 : cut] == b"\n"):
            self._dirty = False
        elif final and cut > pos:
            self._dirty = True
        return cut

    def _find(self, buf: bytes, lo: int, hi: int, final: bool = True) -> list[Span]:
        """Findings in the raw bytes and, where the terminal would show something else, in
        the projection."""
        scanner = self._scanner
        spans = scanner.find(buf, lo, hi)
        if self._encoded is not None:
            spans += self._encoded.spans(buf, lo, hi, final, scanner.extra_hits)
        known_buf, known_lo, known = self._controls
        if known_buf is buf and known_lo == lo and hi == len(buf):
            first, kinds = known
        else:
            first, kinds = projection.CONTROLS.find(buf, lo, hi)
        if first < 0:
            return spans
        start = buf.rfind(b"\n", lo, first) + 1 or lo
        if self.binary_at is not None:  # binary: only UTF-16/32 strings are read differently
            spans = [s for s in spans if s.name not in self._text_only or _is_text(buf, s)]
            if "other" in kinds and b"\0" in buf[start:hi]:
                view = projection.without_nuls(buf, start, hi)
                wide = [s for s in scanner.find(view.text, 0, len(view.text))
                        if s.name not in self._text_only or _is_wide(view, s)]  # fmt: skip
                spans += _mapped(view, wide)
            return spans
        if kinds - {"bs", "cr", "move"}:
            view = projection.stripped(buf, start, hi, kinds)
            spans += _mapped(view, scanner.find(view.text, 0, len(view.text)))
        if not kinds & {"bs", "cr", "move"}:
            return spans
        for line_start, line_end in projection.render_lines(buf, start, hi):
            view = projection.rendered(buf, line_start, line_end)
            spans += _mapped(view, scanner.find(view.text, 0, len(view.text)))
        return spans

    def _report_encoded(self, buf: bytes, pos: int, cut: int) -> None:
        assert self._encoded is not None
        for encoder, name, offset in self._encoded.find(buf, pos, cut):
            self.events.append(EncodedSecret(encoder, name, self._sent + offset))

    def _suspicious(self) -> int:
        """Where in the held tail a secret may be starting, or -1 (see the module docstring)."""
        if self._key is not None:
            return 0
        tail = self._buf[self._start :]
        skip = max(0, len(tail) - 160)  # a starting secret shows itself in its first bytes
        text = tail[skip:]
        view = None
        if projection.CONTROLS.find(text, 0, len(text))[0] >= 0:
            view = projection.stripped(text, 0, len(text))
            text = view.text
        starts = []
        found = _open_start(text)
        if found >= 0:
            starts.append(found)
        for keyword_start, keyword_end in self._scanner.keyword_hits(text):
            if _TOKEN_CHARS.match(text, keyword_end) is not None:
                starts.append(keyword_start)
        if not starts:
            return -1
        start = min(starts)
        if view is not None:
            start = view.origin(start, start + 1)[0] if start < len(text) else len(text)
        return _word_start(tail, skip + start)  # what precedes it on its word is held with it

    def _keep(self, buf: bytes, pos: int) -> None:
        """Keep the unsent bytes, and the sent start of their line (bounded) for rescans."""
        line = buf.rfind(b"\n", max(0, pos - WINDOW), pos)
        keep_from = line if line >= 0 else max(0, pos - WINDOW)
        self._sent += keep_from
        self._buf = buf[keep_from:]
        self._start = pos - keep_from


def _merged(spans: list[Span], pos: int, cut: int) -> list[tuple[int, int, Span, bool]]:
    """Overlapping findings as one mask each: (start, end, the finding that names it, opens a
    key block). The detector listed first in the table names a merged mask."""
    groups: list[tuple[int, int, Span, bool]] = []
    for span in sorted(spans, key=lambda s: (s.mask_start, -s.mask_end, s.rank)):
        start, end = max(span.mask_start, pos), min(span.mask_end, cut)
        if end <= start:
            continue
        if groups and start < groups[-1][1]:
            first_start, first_end, best, opens = groups[-1]
            best = span if span.rank < best.rank else best
            groups[-1] = (first_start, max(first_end, end), best, opens or span.opens_block)
        else:
            groups.append((start, end, span, span.opens_block))
    return groups


def _is_text(buf: bytes, span: Span) -> bool:
    """Whether personal data found in binary output is written as text would write it: a
    printable ASCII run of 12 bytes or more. Random bytes spell an address such as
    `P@T.Ebn` about twice a megabyte; one of 12 printable bytes about once in 5 GB."""
    found = buf[span.start : span.end]
    return len(found) >= 12 and found.isascii() and found.decode().isprintable()


def _is_wide(view: projection.View, span: Span) -> bool:
    """Whether a finding in a NUL-less view was UTF-16/32 text (a NUL after every
    character), not bytes of a binary file that happen to spell it."""
    start, end = view.origin(span.start, span.end)
    return end - start >= 2 * (span.end - span.start) - 1


def _mapped(view: projection.View, spans: list[Span]) -> list[Span]:
    out = []
    for span in spans:
        start, end = view.origin(span.start, span.end)
        mask_start, mask_end = view.origin(span.mask_start, span.mask_end)
        out.append(Span(min(start, mask_start), max(end, mask_end), mask_start, mask_end,
                        span.name, span.opens_block, span.rank))  # fmt: skip
    return out


def _settle(spans: list[Span], pos: int, cut: int, n: int) -> tuple[int, list[Span]]:
    """Move the cut off any finding it would split; stop after a key block's BEGIN.

    A finding that starts after `pos` and crosses the cut pulls the cut back
    to its start (it will be decided whole on the next round). One that
    started before `pos` (its head went out on a release) is masked from `pos`
    to its end. A run of text longer than 2 x WINDOW with a finding across
    every candidate cut (possible only with a custom pattern) is cut anyway.
    """
    for _ in range(len(spans) + 1):
        crossing = [s for s in spans if s.start < cut < s.end]
        if not crossing:
            break
        span = crossing[0]
        cut = span.start if span.start >= pos else span.end
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


_BINARY = re.compile(rb"[\x01-\x06\x0e-\x1a\x1c-\x1f]|\x00\x00")


_PERSONAL_GROUPS = frozenset({"personal", "national-id"})


def _binary_start(buf: bytes, start: int) -> int | None:
    """Offset in buf of the first byte that makes the stream binary, if any."""
    found = _BINARY.search(buf, max(0, start - 1))
    return max(start, found.start()) if found is not None else None
