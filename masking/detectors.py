"""What the masker looks for: one Detector per kind of secret or personal data.

Every byte of every session passes here, so each detector is shaped to cost
nearly nothing on ordinary output:

- token-like secrets start their regex only where a rare *anchor* occurs
  (found with `bytes.find`, a memchr), e.g. `z` for `AIza...` keys;
- number-shaped data (cards, ids, IBANs) is looked for only on the lines a
  class-translated copy of the text flags as holding a long digit group;
- validators (Luhn, mod 97, SSN ranges) turn the few candidates into findings.

No pattern matches a line break, so a finding never spans two lines, and
every built-in match is at most MAX_MATCH bytes long: the stream masker
relies on both (see stream.py). Private key blocks that do span lines are
opened here (`opens_block`) and followed by keyblock.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rules.masking import validators as check

MAX_MATCH = 16 * 1024  # longest built-in finding (a JWT, a one-line PEM block)
MAX_CUSTOM_PATTERN = 512  # characters of a configured regex
_SEARCH_AFTER = 6  # anchor hits tried one by one before the literal (or sre) searches the rest

ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
WORD = ALNUM + b"_"


@dataclass(frozen=True, slots=True)
class Span:
    """One finding: [start, end) is the whole match (a cut may not fall inside it),
    [mask_start, mask_end) the part replaced by the marker."""

    start: int
    end: int
    mask_start: int
    mask_end: int
    name: str
    opens_block: bool = False


class Region:
    """The bytes being scanned, buf[lo:hi], with cheap facts computed once and shared.

    `buf` may hold context before `lo` (for boundary checks) and after `hi`
    is never read. `classes` is buf translated by CLASSES from `classes_lo`
    on (digits to `d`, space and dash to `s`); the stream masker makes it
    once per chunk, and the Region makes its own when not given one.
    """

    __slots__ = ("buf", "lo", "hi", "classes", "classes_lo", "_has", "_digit_lines")

    def __init__(
        self, buf: bytes, lo: int, hi: int, classes: bytes | None = None, classes_lo: int = 0
    ) -> None:
        self.buf, self.lo, self.hi = buf, lo, hi
        if classes is None or classes_lo > lo or classes_lo + len(classes) < hi:
            classes, classes_lo = buf[lo:hi].translate(CLASSES), lo
        self.classes, self.classes_lo = classes, classes_lo
        self._has: dict[bytes, bool] = {}
        self._digit_lines: list[tuple[int, int]] | None = None

    def has(self, needle: bytes) -> bool:
        found = self._has.get(needle)
        if found is None:
            found = self._has[needle] = self.buf.find(needle, self.lo, self.hi) >= 0
        return found

    def digit_lines(self) -> list[tuple[int, int]]:
        """(start, end) of lines holding 13 digits in a row, or `d dddd` / `d-dddd`."""
        if self._digit_lines is None:
            self._digit_lines = _digit_lines(self)
        return self._digit_lines


def _class_table() -> bytes:
    table = bytearray(b"." * 256)
    for byte in range(0x30, 0x3A):
        table[byte] = ord("d")
    table[0x20] = table[0x2D] = ord("s")
    table[0x00] = 0x00
    for byte in (*range(0x01, 0x07), *range(0x0E, 0x1B), *range(0x1C, 0x20)):
        table[byte] = ord("c")
    return bytes(table)


CLASSES = _class_table()
"""Byte classes: `d` digit, `s` space or dash, `c` a control byte text never holds, NUL
itself, `.` other."""

_DIGIT_NEEDLES = (b"ddddddddddddd", b"dsdddd")
_MERGE_GAP = 512


def _digit_lines(region: Region) -> list[tuple[int, int]]:
    buf, lo, hi = region.buf, region.lo, region.hi
    classes, base = region.classes, region.classes_lo
    lines: list[tuple[int, int]] = []
    nexts = [classes.find(needle, lo - base, hi - base) for needle in _DIGIT_NEEDLES]
    while True:
        found = [n for n in nexts if n >= 0]
        if not found:
            return lines
        at = base + min(found)
        newline = buf.rfind(b"\n", lo, at)
        start = lo if newline < 0 else newline + 1
        end = buf.find(b"\n", at, hi)
        end = hi if end < 0 else end
        if lines and start - lines[-1][1] < _MERGE_GAP:  # dense: one window, fewer searches
            lines[-1] = (lines[-1][0], end)
        else:
            lines.append((start, end))
        if end >= hi:
            return lines
        past = end - base
        nexts = [
            classes.find(needle, past, hi - base) if 0 <= n < past else n
            for n, needle in zip(nexts, _DIGIT_NEEDLES, strict=True)
        ]


class Detector:
    """A kind of finding. Subclasses say where to look; `find` yields Spans in order."""

    name: str
    description: str
    example: bytes  # a fake secret of this kind, for --list and the tests
    anchor: bytes | None = None  # a byte every finding holds: no such byte, no search

    def find(self, region: Region) -> Iterator[Span]:
        raise NotImplementedError


@dataclass(frozen=True)
class AnchoredRegex(Detector):
    """A regex tried only where it can start, found without running it over everything.

    `anchor` is one byte every match holds, chosen rare in ordinary output:
    when a read does not hold it (a memchr), the detector costs nothing.
    Where it does, a `literal` the match starts with is searched for and
    the regex tried there; without a literal, each anchor occurrence is
    tried (at `offset` into the match) until there are many, then sre
    searches the rest. `lead` lists byte strings one of which must come
    right before the match (kept out of the regex so it starts with a
    literal); `before` lists bytes that may not precede the match (a word
    boundary without a lookbehind, which would stop sre's prefix search);
    `gate` lists further bytes that must all occur in the read.
    """

    name: str
    pattern: re.Pattern[bytes]
    anchor: bytes
    literal: bytes = b""
    offset: int = 0
    description: str = ""
    example: bytes = b""
    group: int | str = 0
    lead: tuple[bytes, ...] = ()
    before: bytes = b""
    gate: tuple[bytes, ...] = ()
    validate: Callable[[bytes], bool] | None = None
    opens: Callable[[re.Match[bytes], bytes], bool] | None = None

    def find(self, region: Region) -> Iterator[Span]:
        if self.gate and not all(region.has(byte) for byte in self.gate):
            return
        buf, lo, hi = region.buf, region.lo, region.hi
        lo += len(self.lead[0]) if self.lead else 0
        anchor, offset, literal, match = self.anchor, self.offset, self.literal, self.pattern.match
        at = buf.find(anchor, lo + offset, hi)
        tries = 0
        while at >= 0:
            start = at - offset
            if not literal or buf.startswith(literal, start):
                found = match(buf, start, hi)
                span = self._span(buf, found) if found is not None else None
                if span is not None:
                    yield span
                    at = buf.find(anchor, span.end + offset, hi)
                    continue
            tries += 1
            if tries > _SEARCH_AFTER:  # a common anchor in this text: search the rest at once
                yield from self._search(buf, start + 1, hi)
                return
            at = buf.find(anchor, at + 1, hi)

    def _search(self, buf: bytes, pos: int, hi: int) -> Iterator[Span]:
        """The rest of the text: by its literal (a C search) if it has one, else by sre."""
        literal = self.literal
        while True:
            if literal:
                at = buf.find(literal, pos, hi)
                found = self.pattern.match(buf, at, hi) if at >= 0 else None
                if at < 0:
                    return
            else:
                found = self.pattern.search(buf, pos, hi)
                if found is None:
                    return
                at = found.start()
            span = self._span(buf, found) if found is not None else None
            if span is None:
                pos = at + 1
            else:
                yield span
                pos = found.end()  # type: ignore[union-attr]

    def _span(self, buf: bytes, match: re.Match[bytes]) -> Span | None:
        start = match.start()
        if self.lead:
            for lead in self.lead:
                if buf.startswith(lead, start - len(lead)):
                    start -= len(lead)
                    break
            else:
                return None
        if self.before and start > 0 and buf[start - 1] in self.before:
            return None
        mask_start, mask_end = match.span(self.group)
        if mask_start < 0:
            mask_start, mask_end = match.span()
        if self.validate is not None and not self.validate(buf[mask_start:mask_end]):
            return None
        if self.group == 0:
            mask_start = start
        opens = self.opens is not None and self.opens(match, buf)
        return Span(start, match.end(), mask_start, mask_end, self.name, opens)


@dataclass(frozen=True)
class LineRegex(Detector):
    """A number-shaped pattern, looked for only on lines Region.digit_lines flags.

    The members chosen for a masker run as one NumberFamily: one regex
    search per flagged line instead of one per member. The pattern starts
    with a character class (its boundary is a lookbehind placed after the
    first character) so sre can skip ahead to candidates.
    """

    name: str
    pattern: bytes
    description: str = ""
    example: bytes = b""
    validate: Callable[[bytes], bool] | None = None

    def find(self, region: Region) -> Iterator[Span]:
        yield from NumberFamily((self,)).find(region)


class NumberFamily(Detector):
    """Several LineRegex members as one alternation; the member that matched names the span."""

    def __init__(self, members: Sequence[LineRegex]) -> None:
        self.members = {member.name: member for member in members}
        self.name = "+".join(self.members)
        self.description = "numbers: " + ", ".join(self.members)
        self.example = b""
        self.pattern = re.compile(
            b"|".join(b"(?P<%s>%s)" % (_group(m.name).encode(), m.pattern) for m in members)
        )
        self._names = {_group(m.name): m for m in members}

    def find(self, region: Region) -> Iterator[Span]:
        buf, search = region.buf, self.pattern.search
        for start, end in region.digit_lines():
            pos = start
            while True:
                match = search(buf, pos, end)
                if match is None:
                    break
                member = self._names[match.lastgroup or ""]
                if member.validate is None or member.validate(match.group()):
                    yield Span(*match.span(), *match.span(), member.name)
                    pos = match.end()
                else:
                    pos = match.start() + 1


def _group(name: str) -> str:
    return "n_" + name.replace("-", "_")


def grouped(detectors: Sequence[Detector]) -> tuple[Detector, ...]:
    """The detectors with their LineRegex members folded into one NumberFamily."""
    numbers = [d for d in detectors if isinstance(d, LineRegex)]
    rest = tuple(d for d in detectors if not isinstance(d, LineRegex))
    return rest + (NumberFamily(numbers),) if numbers else rest


_LOCAL_PART = re.compile(rb"[A-Za-z0-9._%+-]{1,64}\Z")
_DOMAIN = re.compile(
    rb"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}([A-Za-z]{2,24}))(?![A-Za-z0-9:-]|\.[A-Za-z0-9])"
)
# File names such as icon@2x.png look like addresses; these "top-level domains" are not mail.
_FILE_SUFFIXES = frozenset(
    b"png jpg jpeg gif svg webp ico bmp pdf txt json yaml yml toml xml csv log conf cfg ini "
    b"lock tar gz tgz bz2 xz zip js mjs ts tsx jsx css html htm py pyc rb go rs java kt c h "
    b"cpp hpp so dylib dll exe bin sh bash md rst".split()
)


def _not_mail(buf: bytes, start: int, domain: re.Match[bytes]) -> bool:
    """File names (icon@2x.png) and URL authorities (scheme://user:pw@host) are not addresses."""
    if domain.group(2).lower() in _FILE_SUFFIXES and domain.group(1).count(b".") == 1:
        return True
    scheme = buf.rfind(b"://", max(0, start - 300), start)
    return scheme >= 0 and not any(c in b" \t\r\n/\"'<>" for c in buf[scheme + 3 : start])


@dataclass(frozen=True)
class EmailDetector(Detector):
    """Addresses found from their `@`: the domain forwards, the local part backwards."""

    name: str = "email"
    description: str = "e-mail addresses"
    example: bytes = b"jane.doe@example.com"
    anchor: bytes | None = b"@"

    def find(self, region: Region) -> Iterator[Span]:
        buf, lo, hi = region.buf, region.lo, region.hi
        at = buf.find(b"@", lo, hi)
        while at >= 0:
            domain = _DOMAIN.match(buf, at, hi)
            local = _LOCAL_PART.search(buf, max(0, at - 64), at) if domain else None
            if domain is not None and local is not None:
                start = local.start()
                while buf[start] == 0x2E and start < at:  # a local part does not start with "."
                    start += 1
                if start < at and not _not_mail(buf, start, domain):
                    yield Span(start, domain.end(), start, domain.end(), self.name)
                    at = buf.find(b"@", domain.end(), hi)
                    continue
            at = buf.find(b"@", at + 1, hi)


@dataclass(frozen=True)
class CustomRegex(Detector):
    """An operator's pattern; a group named `secret`, if any, is the part masked."""

    name: str
    pattern: re.Pattern[bytes]
    description: str = "custom pattern"
    example: bytes = b""

    def find(self, region: Region) -> Iterator[Span]:
        buf, pos, hi = region.buf, region.lo, region.hi
        secret = "secret" if "secret" in self.pattern.groupindex else 0
        while True:
            match = self.pattern.search(buf, pos, hi)
            if match is None:
                return
            if match.end() == match.start():  # an empty match masks nothing
                pos = match.end() + 1
                if pos > hi:
                    return
                continue
            mask_start, mask_end = match.span(secret)
            if mask_start < 0:
                mask_start, mask_end = match.span()
            yield Span(*match.span(), mask_start, mask_end, self.name)
            pos = match.end()


def custom_detector(pattern: str, name: str = "custom") -> CustomRegex:
    """Compile one configured pattern (a Python regex over the output's bytes).

    Raises ValueError with a message naming the pattern if it is too long or
    does not compile. Patterns should not match line breaks: a finding is
    looked for within one line.
    """
    if not pattern:
        raise ValueError("an empty mask pattern would mask nothing")
    if len(pattern) > MAX_CUSTOM_PATTERN:
        raise ValueError(
            f"mask pattern longer than {MAX_CUSTOM_PATTERN} characters: {pattern[:40]!r}..."
        )
    try:
        compiled = re.compile(pattern.encode("utf-8"))
    except re.error as exc:
        raise ValueError(f"mask pattern {pattern!r} does not compile: {exc}") from None
    if compiled.match(b""):
        raise ValueError(f"mask pattern {pattern!r} matches the empty string")
    return CustomRegex(name, compiled)


def _key_block_opens(match: re.Match[bytes], buf: bytes) -> bool:
    """A BEGIN line with no END on it and nothing but blanks after: a multi-line block."""
    if match.group("end") is not None:
        return False
    end = buf.find(b"\n", match.end())
    rest = buf[match.end() : end if end >= 0 else len(buf)]
    return rest.strip(b" \t\r") == b""


_KEY_NAME = rb"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_B = re.compile


def _builtin() -> list[Detector]:
    return [
        AnchoredRegex(
            "private-key",
            _B(
                rb"-----BEGIN" + _KEY_NAME + rb"(?:(?:\\[nr]|[A-Za-z0-9+/=: \t,.-]){0,12000}?"
                rb"(?P<end>-----END" + _KEY_NAME + rb")|(?:\\[nr]|[A-Za-z0-9+/=]){0,12000})"
            ),
            anchor=b"B",
            offset=5,
            literal=b"-----BEGIN",
            description="PEM/OpenSSH/PGP private key blocks, BEGIN through END, over any number of lines",
            example=b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----",
            opens=_key_block_opens,
        ),
        AnchoredRegex(
            "aws-access-key",
            _B(rb"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
            anchor=b"A",
            before=ALNUM,
            description="AWS access key ids (AKIA..., ASIA...)",
            example=b"AKIAIOSFODNN7EXAMPLE",
        ),
        *(
            AnchoredRegex(
                "aws-secret-key",
                _B(
                    context
                    + rb"[\"']?[ \t]*[:=][ \t]*[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
                ),
                anchor=context[1:2],
                offset=1,
                literal=context[:5],
                lead=lead,
                before=ALNUM,
                gate=gate,
                group="secret",
                description="AWS secret access keys after aws_secret_access_key, SecretAccessKey...",
                example=b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            for context, lead, gate in (
                (rb"ecret_[Aa]ccess_[Kk]ey", (b"S", b"s"), (b"_",)),
                (rb"ecret[Aa]ccess[Kk]ey", (b"S", b"s"), (b"A", b"K")),
                (rb"ECRET_?ACCESS_?KEY", (b"S",), (b"S", b"K")),
            )
        ),
        *(
            AnchoredRegex(
                "aws-session-token",
                _B(context + rb"[\"']?[ \t]*[:=][ \t]*[\"']?(?P<secret>[A-Za-z0-9/+=]{100,4096})"),
                anchor=context[2:3],
                offset=2,
                literal=context[:6],
                lead=lead,
                before=ALNUM,
                gate=gate,
                group="secret",
                description="AWS session tokens after aws_session_token, SessionToken...",
                example=b"aws_session_token = IQoJb3JpZ2luX2VjEJr" + b"A" * 100,
            )
            for context, lead, gate in (
                (rb"ession_[Tt]oken", (b"S", b"s"), (b"_",)),
                (rb"ession[Tt]oken", (b"S", b"s"), (b"S", b"T")),
                (rb"ESSION_?TOKEN", (b"S",), (b"S", b"K", b"N")),
            )
        ),
        AnchoredRegex(
            "github-token",
            _B(rb"gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])"),
            anchor=b"_",
            offset=3,
            before=WORD,
            description="GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_)",
            example=b"ghp_" + b"a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        ),
        AnchoredRegex(
            "github-token",
            _B(rb"github_pat_[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])"),
            anchor=b"_",
            offset=6,
            literal=b"github_pat_",
            before=WORD,
            description="GitHub fine-grained tokens (github_pat_)",
            example=b"github_pat_11ABCDEFG0123456789abc_" + b"x1" * 29,
        ),
        AnchoredRegex(
            "gitlab-token",
            _B(rb"glpat-[A-Za-z0-9_-]{20,64}(?![A-Za-z0-9_-])"),
            anchor=b"l",
            offset=1,
            literal=b"glpat-",
            before=WORD,
            description="GitLab personal access tokens (glpat-)",
            example=b"glpat-x1Y2z3A4b5C6d7E8f9G0",
        ),
        AnchoredRegex(
            "slack-token",
            _B(rb"xox[abeoprs]-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9-])"),
            anchor=b"x",
            literal=b"xox",
            before=WORD,
            validate=check.mixed_token,
            description="Slack tokens (xoxb-, xoxp-, xoxa-...)",
            example=b"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        AnchoredRegex(
            "stripe-key",
            _B(rb"_live_[A-Za-z0-9]{24,247}(?![A-Za-z0-9])"),
            anchor=b"_",
            literal=b"_live_",
            lead=(b"sk", b"rk"),
            before=WORD,
            description="Stripe live secret and restricted keys (sk_live_, rk_live_)",
            example=b"sk_live_" + b"4eC39HqLyjWDarjtT1zdp7dc",
        ),
        AnchoredRegex(
            "google-api-key",
            _B(rb"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
            anchor=b"z",
            offset=2,
            literal=b"AIza",
            before=WORD,
            description="Google API keys (AIza...)",
            example=b"AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        ),
        AnchoredRegex(
            "llm-api-key",
            _B(
                rb"sk-(?:proj-|ant-(?:api|admin)[0-9]{2}-|svcacct-|admin-)?[A-Za-z0-9_-]{20,400}"
                rb"(?![A-Za-z0-9_-])"
            ),
            anchor=b"k",
            offset=1,
            literal=b"sk-",
            before=WORD + b"-",
            validate=check.mixed_token,
            description="OpenAI and Anthropic style keys (sk-..., sk-proj-..., sk-ant-api03-...)",
            example=b"sk-ant-api03-" + b"Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0",
        ),
        AnchoredRegex(
            "jwt",
            _B(rb"eyJ[A-Za-z0-9_-]{5,2048}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{0,2048}"),
            anchor=b"J",
            offset=2,
            literal=b"eyJ",
            before=WORD + b"-",
            description="JSON Web Tokens (eyJ...eyJ...signature)",
            example=b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        *(
            AnchoredRegex(
                "bearer-token",
                _B(
                    context + rb"[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:[Bb]earer|[Bb]asic|[Tt]oken|"
                    rb"BEARER|BASIC|TOKEN)[ \t]+)?(?P<secret>[^\s\"',;]{4,4096})"
                ),
                anchor=context[6:7],
                offset=6,
                literal=context,
                lead=lead,
                before=ALNUM,
                gate=gate,
                group="secret",
                description="credentials in Authorization headers (Bearer, Basic, Token)",
                example=b"Authorization: Bearer abcDEF123456ghiJKL789",
            )
            for context, lead, gate in (
                (rb"uthorization", (b"A", b"a"), ()),
                (rb"UTHORIZATION", (b"A",), (b"U", b"H")),
            )
        ),
        *(
            AnchoredRegex(
                "bearer-token",
                _B(word + rb"[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{16,4096}=*)"),
                anchor=b"B",
                literal=word,
                before=ALNUM,
                group="secret",
                validate=check.mixed_token,
                description="bearer tokens (Bearer ...)",
                example=b"Bearer abcDEF123456ghiJKL789",
            )
            for word in (rb"Bearer", rb"BEARER")
        ),
        AnchoredRegex(
            "url-password",
            _B(
                rb"://[^\s:/@]{0,128}:(?P<secret>[^\s/]{1,256}?)@[^\s/@:?#\"'<>]{1,253}(?![^\s/:?#\"'<>])"
            ),
            anchor=b":",
            gate=(b"@",),
            literal=b"://",
            group="secret",
            description="passwords inside URLs (scheme://user:PASSWORD@host); only the password",
            example=b"postgres://app:s3cr3t-pw@db.example.com/app",
        ),
        EmailDetector(),
        LineRegex(
            "card",
            rb"[2-6](?<![0-9A-Za-z_.+-].)(?<![0-9][ -].)(?:[0-9]{12,18}|[0-9]{3}(?P<cs>[ -])[0-9]{4}(?P=cs)[0-9]{4}"
            rb"(?P=cs)[0-9]{1,4}(?:(?P=cs)[0-9]{1,3})?|(?<=3)[0-9]{3}(?P<ct>[ -])[0-9]{6}(?P=ct)"
            rb"[0-9]{4,5})(?![0-9A-Za-z_]|[.,-][0-9])",
            validate=check.card_number,
            description="payment card numbers (13-19 digits, spaces or dashes, Luhn-checked)",
            example=b"4111 1111 1111 1111",
        ),
        LineRegex(
            "us-ssn",
            rb"[0-9](?<![0-9A-Za-z_.-].)[0-9]{2}-[0-9]{2}-[0-9]{4}(?![0-9A-Za-z_]|-[0-9])",
            validate=check.us_ssn,
            description="US social security numbers (AAA-GG-SSSS, invalid ranges left out)",
            example=b"536-22-1234",
        ),
        LineRegex(
            "in-aadhaar",
            rb"[2-9](?<![0-9A-Za-z_.-].)(?<![0-9][ -].)[0-9]{3}(?P<as>[ -])[0-9]{4}(?P=as)[0-9]{4}"
            rb"(?![0-9A-Za-z_]|[ -][0-9])",
            validate=check.aadhaar,
            description="Indian Aadhaar numbers (4-4-4 digits, Verhoeff-checked)",
            example=b"2345 6789 0124",
        ),
        LineRegex(
            "iban",
            rb"[A-Z](?<![0-9A-Za-z_].)[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
            rb"(?![0-9A-Za-z_])",
            validate=check.iban,
            description="IBANs (country length and mod-97 checked)",
            example=b"DE89 3704 0044 0532 0130 00",
        ),
        AnchoredRegex(
            "phone",
            _B(rb"\+[1-9][0-9 ().-]{8,22}[0-9](?![0-9])"),
            anchor=b"+",
            before=WORD + b"+",
            validate=check.e164_phone,
            description="phone numbers in E.164 form (+ and 10-15 digits)",
            example=b"+1 415 555 2671",
        ),
    ]


BUILTIN: tuple[Detector, ...] = tuple(_builtin())
NAMES: tuple[str, ...] = tuple(dict.fromkeys(d.name for d in BUILTIN))
GROUPS: dict[str, tuple[str, ...]] = {
    "all": NAMES,
    "national-id": ("us-ssn", "in-aadhaar"),
    "cloud-keys": (
        "aws-access-key",
        "aws-secret-key",
        "aws-session-token",
        "github-token",
        "gitlab-token",
        "slack-token",
        "stripe-key",
        "google-api-key",
        "llm-api-key",
    ),
}


def select(names: Sequence[str] = ("all",)) -> tuple[Detector, ...]:
    """Built-in detectors by name or group name (`all`, `national-id`, `cloud-keys`).

    Raises ValueError naming the first unknown name.
    """
    wanted: list[str] = []
    for name in names:
        if name in GROUPS:
            wanted.extend(GROUPS[name])
        elif name in NAMES:
            wanted.append(name)
        else:
            known = ", ".join((*GROUPS, *NAMES))
            raise ValueError(f"unknown detector {name!r}; known: {known}")
    chosen = set(wanted)
    return tuple(d for d in BUILTIN if d.name in chosen)


def describe() -> list[tuple[str, str, bytes]]:
    """(name, description, example) for each built-in detector, in scan order."""
    seen: dict[str, tuple[str, str, bytes]] = {}
    for detector in BUILTIN:
        seen.setdefault(detector.name, (detector.name, detector.description, detector.example))
    return list(seen.values())
