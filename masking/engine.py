"""Finding secrets in a buffer: one prefilter pass, then each detector only where it can match.

    >>> from masking.table import select
    >>> scanner = Scanner(select(["aws-access-key", "email"]))
    >>> [(s.name, s.mask_start, s.mask_end) for s in scanner.find(b"key AKIAIOSFODNN7EXAMPLE", 0, 23)]
    [('aws-access-key', 4, 23)]

Every detector names triggers (literal keywords, or a small regex for the
number-shaped ones). The prefilter finds all of them in one pass over the
buffer: Hyperscan, when the `hyperscan` package is importable, matches a few
hundred literals at gigabytes per second; otherwise a pure-Python fallback
finds the same hits (slower, same results; the tests run both). At each hit
the detector's regex is tried in a window of the hit's line, and its checks
(Luhn, entropy, ...) decide. A read with no trigger costs one prefilter pass
and nothing more.

No built-in finding spans a line break (private key blocks that do are
opened here and followed by keyblock.py), and none is longer than
table.MAX_MATCH bytes: the stream masker relies on both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from masking.builtins import BUILTINS, Span
from masking.table import Detector, sre_parse

log = logging.getLogger(__name__)

try:
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised where the wheel is missing
    _hs = None


class Prefilter(Protocol):
    def hits(self, buf: bytes, lo: int, hi: int) -> list[Hit]:
        """(trigger id, start, end offset in buf) of every trigger occurrence in buf[lo:hi].

        Starts are not needed (a literal starts len(literal) before its end, a regex
        trigger at most its width before): Hyperscan reports them as 0, which is
        cheaper than asking for them."""
        ...


Owner = tuple[int, int]  # (detector index, literal length; minus the width of a regex trigger)
Hit = tuple[int, int, int]  # (trigger id, start, end)
TriggerKey = tuple[bytes | None, bytes | None, bool]  # (literal, regex, ignore case)


def _triggers(detectors: Sequence[Detector]) -> tuple[list[TriggerKey], list[list[Owner]]]:
    """Distinct triggers in id order, and the detectors each one serves.

    Detectors that share a trigger (the number-shaped ones share two) share
    one prefilter id, so a hit costs one callback however many detectors
    it serves."""
    keys: dict[TriggerKey, int] = {}
    owners: list[list[Owner]] = []
    for index, detector in enumerate(detectors):
        for trigger in detector.triggers:
            key = (trigger.literal, trigger.regex, trigger.literal is not None or trigger.caseless)
            if key not in keys:
                keys[key] = len(owners)
                owners.append([])
            if trigger.literal is not None:
                owner = (index, len(trigger.literal))
            else:
                owner = (index, -_trigger_width(trigger.regex))
            if owner not in owners[keys[key]]:
                owners[keys[key]].append(owner)
    return list(keys), owners


def _trigger_width(regex: bytes | None) -> int:
    assert regex is not None
    try:
        return max(1, min(int(sre_parse.parse(regex).getwidth()[1]), 4096))
    except Exception:  # noqa: BLE001 - a bound is all that is needed
        return 4096


class HyperscanPrefilter:
    """All triggers in one Hyperscan block-mode database."""

    def __init__(self, triggers: Sequence[TriggerKey]) -> None:
        assert _hs is not None
        expressions, flags = [], []
        for literal, regex, ignore_case in triggers:
            if literal is not None:
                expressions.append(re.escape(literal))
                flags.append(_hs.HS_FLAG_CASELESS)
            else:
                assert regex is not None
                expressions.append(regex)
                flags.append(_hs.HS_FLAG_CASELESS if ignore_case else 0)
        self._db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        self._db.compile(expressions=expressions, ids=list(range(len(expressions))), flags=flags)
        self._scratch = _hs.Scratch(self._db)

    def hits(self, buf: bytes, lo: int, hi: int) -> list[Hit]:
        found: list[Hit] = []
        add = found.append

        def on_match(id_: int, start: int, end: int, flags: int, context: Any) -> None:
            add((id_, start + lo, end + lo))

        self._db.scan(buf[lo:hi] if lo or hi != len(buf) else buf, match_event_handler=on_match,
                      scratch=self._scratch)  # fmt: skip
        return found


class RegexPrefilter:
    """The same hits without Hyperscan: a search per literal over a lower-cased copy."""

    def __init__(self, triggers: Sequence[TriggerKey]) -> None:
        self._literals = [(i, t[0]) for i, t in enumerate(triggers) if t[0] is not None]
        self._regexes = [
            (i, re.compile(t[1], re.IGNORECASE if t[2] else 0))
            for i, t in enumerate(triggers)
            if t[1] is not None
        ]

    def hits(self, buf: bytes, lo: int, hi: int) -> list[Hit]:
        found: list[Hit] = []
        lowered = buf[lo:hi].lower()
        for id_, literal in self._literals:
            assert literal is not None
            at = lowered.find(literal)
            while at >= 0:
                found.append((id_, lo + at, lo + at + len(literal)))
                at = lowered.find(literal, at + 1)
        for id_, regex in self._regexes:
            for start, end in _overlapping(regex, buf, lo, hi):
                found.append((id_, start, end))
        return found


def _overlapping(
    regex: re.Pattern[bytes], buf: bytes, lo: int, hi: int
) -> Iterable[tuple[int, int]]:
    """(start, end) of matches starting at every position (as Hyperscan reports them)."""
    pos = lo
    while True:
        match = regex.search(buf, pos, hi)
        if match is None:
            return
        yield match.span()
        pos = match.start() + 1


_CACHE: dict[tuple[int, ...], tuple[Prefilter, list[list[Owner]]]] = {}


def prefilter_for(
    detectors: Sequence[Detector], engine: str = "auto", extra: Sequence[TriggerKey] = ()
) -> tuple[Prefilter, list[list[Owner]]]:
    """The prefilter for these detectors and, per trigger id, the detectors it serves; `extra`
    triggers (no detector: their hits are kept for the caller) come last.

    Built once per set of detectors (compiling takes a fraction of a second)."""
    key = (hash(engine), hash(tuple(extra)), *(id(d) for d in detectors))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    triggers, owners = _triggers(detectors)
    triggers, owners = triggers + list(extra), owners + [[] for _ in extra]
    prefilter: Prefilter
    if engine == "re" or (engine == "auto" and _hs is None) or not triggers:
        prefilter = RegexPrefilter(triggers)
    else:
        if _hs is None:
            raise RuntimeError("the hyperscan package is not installed")
        prefilter = HyperscanPrefilter(triggers)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[key] = (prefilter, owners)
    return prefilter, owners


ENGINE = "hyperscan" if _hs is not None else "re"


class Scanner:
    """Find every finding of some detectors in buf[lo:hi]. Stateless between calls."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        engine: str = "auto",
        extra: Sequence[TriggerKey] = (),
    ) -> None:
        self.detectors = tuple(detectors)
        ranked = [(rank, d) for rank, d in enumerate(self.detectors) if d.triggers]
        self._triggered = tuple(d for _, d in ranked)
        self._ranks = [rank for rank, _ in ranked]
        self._custom = [(i, d) for i, d in enumerate(self.detectors) if not d.triggers]
        self._prefilter, self._owners = prefilter_for(self._triggered, engine, extra)
        self._extra_base = len(self._owners) - len(extra)
        self.extra_hits: list[tuple[int, int]] = []  # (extra index, end) of the last find()

    def keyword_ends(self, text: bytes) -> list[int]:
        """Where each trigger hit in `text` ends."""
        return [to for _, _, to in self._prefilter.hits(text, 0, len(text))]

    def keyword_hits(self, text: bytes) -> list[tuple[int, int]]:
        """(start, end) of each distinctive token keyword (3 bytes or more) in `text`."""
        hits = []
        for trigger, _, to in self._prefilter.hits(text, 0, len(text)):
            for index, length in self._owners[trigger]:
                if length >= 3 and self._triggered[index].kind == "token":
                    hits.append((to - length, to))
                    break
        return hits

    def find(self, buf: bytes, lo: int, hi: int) -> list[Span]:
        """Findings that start in buf[lo:hi] (buf before lo is context for boundaries)."""
        found: dict[tuple[int, int, str], Span] = {}
        searched: dict[int, tuple[int, int]] = {}
        self.extra_hits = extra = []
        if self._owners:
            owners, detectors, base = self._owners, self._triggered, self._extra_base
            for trigger, _, to in self._prefilter.hits(buf, lo, hi):
                if trigger >= base:
                    extra.append((trigger - base, to))
                for index, length in owners[trigger]:
                    fuzzy = length < 0  # a regex trigger: its hit starts somewhere in [at, to)
                    at = max(lo, to + length) if fuzzy else to - length
                    self._confirm(index, detectors[index], buf, at, to, fuzzy, lo, hi, found,
                                  searched)  # fmt: skip
        for rank, detector in self._custom:
            for match in detector.regex.finditer(buf, lo, hi):  # type: ignore[union-attr]
                if match.end() > match.start():
                    self._add(found, detector, rank, match)
        return list(found.values())

    def _confirm(
        self,
        index: int,
        detector: Detector,
        buf: bytes,
        at: int,
        to: int,
        fuzzy: bool,
        lo: int,
        hi: int,
        found: dict[tuple[int, int, str], Span],
        searched: dict[int, tuple[int, int]],
    ) -> None:
        # A regex trigger may begin with the line break before its line: look from its end.
        newline = buf.rfind(b"\n", lo, to - 1 if fuzzy else at)
        line_start = newline + 1 if newline >= 0 else lo
        at = max(at, line_start)
        line_end = buf.find(b"\n", to, hi)
        if line_end < 0:
            line_end = hi
        rank = self._ranks[index]
        if detector.impl is not None:
            for span in BUILTINS[detector.impl](detector.name, buf, at, to, line_start, line_end):
                key = (span.mask_start, span.mask_end, span.name)
                if key not in found:
                    found[key] = Span(span.start, span.end, span.mask_start, span.mask_end,
                                      span.name, span.opens_block, rank)  # fmt: skip
            return
        regex = detector.regex
        assert regex is not None
        if detector.back == 0 and not fuzzy:
            match = regex.match(buf, at, line_end)
            if match is not None:
                self._add(found, detector, rank, match)
            return
        start = max(line_start, at - detector.back)
        previous = searched.get(index)
        if previous is not None and previous[0] <= start and to <= previous[1]:
            return  # the previous hit's search covered this one
        # Every match from `start` up to the first one past this hit is taken (that one is
        # real too): later hits of the detector on the line that fall in what was scanned
        # are answered, so a long line of hits is searched once, not once per hit (a 45 KB
        # line of numbers took 46 s).
        scanned = line_end
        for match in regex.finditer(buf, start, line_end):
            self._add(found, detector, rank, match)
            if match.start() > to:
                scanned = match.end()
                break
        searched[index] = (start, scanned)

    @staticmethod
    def _add(
        found: dict[tuple[int, int, str], Span],
        detector: Detector,
        rank: int,
        match: re.Match[bytes],
    ) -> None:
        mask_start, mask_end = detector.secret_span(match)
        if mask_end <= mask_start:
            return
        if detector.checks and not detector.accepts(match.string[mask_start:mask_end]):
            return
        key = (mask_start, mask_end, detector.name)
        if key not in found:
            found[key] = Span(match.start(), match.end(), mask_start, mask_end, detector.name,
                              False, rank)  # fmt: skip
