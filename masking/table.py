"""The detector table (detectors.toml) read into Detector values, compiled once.

    >>> aws = next(d for d in BUILTIN if d.name == "aws-access-key")
    >>> aws.group, aws.triggers[:2]
    ('cloud-keys', (Trigger(literal=b'a3t', regex=None, caseless=True), Trigger(literal=b'akia', regex=None, caseless=True)))

Each row becomes one Detector: a confirm regex built for its kind (see the
table's header), the triggers the prefilter looks for, and the checks a
match must pass. engine.py runs them; nothing here scans text.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

try:  # Python 3.11+: the parser moved; the module name is the same on every version we run
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

from masking import validators

MAX_MATCH = 16 * 1024  # longest finding on one line (a JWT, a one-line PEM block)
MAX_CUSTOM_PATTERN = 512  # characters of a configured regex
KINDS = ("token", "assignment", "regex", "pii", "builtin")
_FIELDS = {
    "name", "pattern", "keys", "value", "keywords", "trigger", "back", "group", "entropy",
    "validator", "ignore_case", "value_case", "boundary", "description", "impl",
    "secret_groups",
}  # fmt: skip

# Assignment forms: KEY = v, KEY: v, "key": "v", key := v, key => v, <key>v</key>, ("key", "v").
_OPERATOR = rb"""[\w.-]{0,20}["'`]?[ \t]{0,3}(?:=|:=|::=|:|=>|\?=|,|>|\|\|)[ \t]{0,5}["'`]?"""
_VALUE_END = rb"""(?=[\s"'`;,&)\]}<|]|\\[nrt]|$)"""
_LEFT = rb"(?<![A-Za-z0-9])"
_RIGHT = rb"(?![A-Za-z0-9])"


@dataclass(frozen=True, slots=True)
class Trigger:
    """What the prefilter looks for: a literal (matched ignoring case) or a simple regex."""

    literal: bytes | None = None
    regex: bytes | None = None
    caseless: bool = False


# An assignment's trigger: one of its key names, the rest of the identifier, an operator.
_KEY_TRIGGER = rb"""[\w.-]{0,20}["'`]?[ \t]{0,3}\??(?:=|:|>|,|\|)"""


@dataclass(frozen=True)
class Detector:
    """One kind of finding. `regex` is tried in a window around each trigger hit."""

    name: str
    group: str
    kind: str
    description: str
    regex: re.Pattern[bytes] | None
    triggers: tuple[Trigger, ...]
    back: int = 0  # bytes a match may start before its trigger hit
    width: int = MAX_MATCH  # longest match
    secret_groups: tuple[str | int, ...] = (0,)
    checks: tuple[Callable[[bytes], bool], ...] = ()
    impl: str | None = None
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def accepts(self, secret: bytes) -> bool:
        return all(check(secret) for check in self.checks)

    def secret_span(self, match: re.Match[bytes]) -> tuple[int, int]:
        """The part of a match that is masked: the first secret group that took part."""
        for group in self.secret_groups:
            try:
                start, end = match.span(group)
            except IndexError:
                continue
            if start >= 0:
                return start, end
        return match.span()


def _width(pattern: bytes, flags: int) -> int:
    try:
        low, high = sre_parse.parse(pattern, flags).getwidth()
    except Exception:  # noqa: BLE001 - a width is an optimisation; the cap is always safe
        return MAX_MATCH
    return min(int(high), MAX_MATCH)


def _checks(row: dict[str, Any], where: str) -> tuple[Callable[[bytes], bool], ...]:
    checks: list[Callable[[bytes], bool]] = []
    name = row.get("validator")
    if name is not None:
        if name not in validators.CHECKS:
            raise ValueError(f"{where}: unknown validator {name!r}")
        checks.append(validators.CHECKS[name])
    if "entropy" in row:
        checks.append(validators.high_entropy(float(row["entropy"])))
    return tuple(checks)


def _pattern(kind: str, row: dict[str, Any]) -> tuple[bytes, int]:
    flags = re.IGNORECASE if row.get("ignore_case", False) else 0
    if kind == "token":
        body = row["pattern"].encode()
        if row.get("boundary", True):
            body = _LEFT + b"(?:" + body + b")" + _RIGHT
        return body, flags
    if kind == "assignment":
        value = row["value"].encode()
        if not row.get("value_case", False):
            value = b"(?i:" + value + b")"
        keys = b"(?i:" + row["keys"].encode() + b")"
        return keys + _OPERATOR + b"(?P<secret>" + value + b")" + _VALUE_END, 0
    return row["pattern"].encode(), flags


def _detector(kind: str, row: dict[str, Any], where: str) -> Detector:
    unknown = set(row) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name = row["name"]
    keywords = [k.lower().encode() for k in row.get("keywords", ())]
    triggers = [Trigger(literal=k, caseless=True) for k in keywords]
    caseless = bool(row.get("ignore_case", False))
    if "trigger" in row:
        given = row["trigger"]
        items = [given] if isinstance(given, str) else given
        triggers = [Trigger(regex=t.encode(), caseless=caseless) for t in items]
    elif kind == "assignment":  # a key name alone is too common a word: wait for the operator
        keys = row["keys"].encode()
        triggers = [Trigger(regex=b"(?:" + keys + b")" + _KEY_TRIGGER, caseless=True)]
    if not triggers:
        raise ValueError(f"{where}: {name} needs keywords or a trigger")
    regex, width = None, MAX_MATCH
    if kind != "builtin":
        pattern, flags = _pattern(kind, row)
        # The engine searches a window of the stream with pos/endpos: `^` and `$` must
        # mean the start and end of a line, not of the window (MULTILINE).
        regex = re.compile(pattern, flags | re.MULTILINE)
        width = _width(pattern, flags)
    groups: tuple[str | int, ...] = tuple(row.get("secret_groups", ()))
    if not groups:
        groups = ("secret", 0) if regex is not None and "secret" in regex.groupindex else (0,)
    return Detector(
        name=name,
        group=row.get("group", "cloud-keys"),
        kind=kind,
        description=row.get("description", name.replace("-", " ")),
        regex=regex,
        triggers=tuple(triggers),
        back=int(row.get("back", 8 if kind == "pii" else 0)),
        width=width,
        secret_groups=groups,
        checks=_checks(row, where),
        impl=row.get("impl"),
        source=dict(row),
    )


@dataclass(frozen=True)
class Table:
    detectors: tuple[Detector, ...]
    groups: dict[str, str]
    aliases: dict[str, tuple[str, ...]]


def load(text: str | None = None) -> Table:
    """Parse the detector table (the shipped one unless `text` is given)."""
    if text is None:
        text = resources.files("masking").joinpath("detectors.toml").read_text("utf-8")
    data = tomllib.loads(text)
    detectors = [
        _detector(kind, row, f"detectors.toml {kind}[{index}]")
        for kind in KINDS
        for index, row in enumerate(data.get(kind, ()))
    ]
    names = [d.name for d in detectors]
    aliases = {k: tuple(v) for k, v in data.get("aliases", {}).items()}
    groups = dict(data.get("groups", {}))
    for alias, members in aliases.items():
        if alias in names or alias in groups:
            raise ValueError(f"detectors.toml: alias {alias!r} is also a detector or group name")
        missing = [m for m in members if m not in names]
        if missing:
            raise ValueError(f"detectors.toml: alias {alias!r} names unknown {missing}")
    return Table(tuple(detectors), groups, aliases)


TABLE = load()
BUILTIN: tuple[Detector, ...] = TABLE.detectors
NAMES: tuple[str, ...] = tuple(dict.fromkeys(d.name for d in BUILTIN))
GROUPS: dict[str, tuple[str, ...]] = {
    "all": NAMES,
    **{g: tuple(dict.fromkeys(d.name for d in BUILTIN if d.group == g)) for g in TABLE.groups},
}


def select(names: Sequence[str] = ("all",)) -> tuple[Detector, ...]:
    """Built-in detectors by name, group name or alias (`all`, `personal`, `github-token`...).

    Raises ValueError naming the first unknown name.
    """
    wanted: set[str] = set()
    for name in names:
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in TABLE.aliases:
            wanted.update(TABLE.aliases[name])
        elif name in NAMES:
            wanted.add(name)
        else:
            known = ", ".join((*GROUPS, *TABLE.aliases))
            raise ValueError(
                f"unknown detector {name!r}; known: {known} and the names --list shows"
            )
    return tuple(d for d in BUILTIN if d.name in wanted)


def custom_detector(pattern: str, name: str = "custom") -> Detector:
    """Compile one configured pattern (a Python regex over the output's bytes).

    Raises ValueError with a message naming the pattern if it is too long or
    does not compile. A group named `secret`, if any, is the part masked.
    Patterns should not match line breaks: a finding is looked for within
    one line. Custom patterns have no trigger: they are searched in every read.
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
    groups: tuple[str | int, ...] = ("secret", 0) if "secret" in compiled.groupindex else (0,)
    return Detector(
        name=name,
        group="custom",
        kind="custom",
        description="custom pattern",
        regex=compiled,
        triggers=(),
        width=MAX_MATCH,
        secret_groups=groups,
    )


def describe() -> list[tuple[str, str, str]]:
    """(name, group, description) for each built-in detector, in table order."""
    return [(d.name, d.group, d.description) for d in BUILTIN]
