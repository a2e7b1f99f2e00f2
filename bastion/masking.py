"""Where a relayed channel's output meets the masker: settings, and one masker per stream.

The relay hands every chunk of target output (stdout and stderr apart) to
ChannelMasking.feed and sends what comes back; the recording is written from
the same masked bytes, so it holds what the agent saw. A partial line a
masker holds back is released by an idle timer the relay runs
(`holdback_ms`). SFTP channels, and exec channels running the server side of
a file-transfer protocol (`scp -f/-t`, `rsync --server`, `git-upload-pack`...),
are not masked: any replacement would corrupt the transfer. What such a
channel may read is for the command rules to decide.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from bastion.errors import ConfigError
from rules.masking import BUILTIN, Detector, Masker, custom_detector, select

BINARY_CHOICES = ("pass", "mask", "close")
_KEYS = {"enabled", "detectors", "patterns", "binary", "holdback_ms"}
MAX_PATTERNS = 64


@dataclass(frozen=True)
class MaskingConfig:
    """The `[masking]` table, with its patterns compiled once at load."""

    enabled: bool = True
    detectors: tuple[str, ...] = ("all",)
    patterns: tuple[str, ...] = ()
    binary: str = "pass"  # non-terminal channels: pass | mask | close
    holdback_ms: int = 40
    compiled: tuple[Detector, ...] = BUILTIN
    role_patterns: Mapping[str, tuple[Detector, ...]] = field(default_factory=dict)

    def detectors_for(self, roles: Iterable[str]) -> tuple[Detector, ...]:
        extra: list[Detector] = []
        for role in roles:
            extra.extend(self.role_patterns.get(role, ()))
        return self.compiled + tuple(extra)


def parse_masking(
    table: Any, where: str, warnings: list[str], roles: Mapping[str, Sequence[str]] = {}
) -> MaskingConfig:
    """`[masking]` (and each role's `mask_patterns`) -> MaskingConfig; errors name the key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [masking] must be a table")
    warnings += [f"{where}: unknown key masking.{key} ignored" for key in table if key not in _KEYS]
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: masking.enabled must be true or false")
    names = _strings(table.get("detectors", ["all"]), f"{where}: masking.detectors")
    patterns = _strings(table.get("patterns", []), f"{where}: masking.patterns")
    binary = table.get("binary", "pass")
    if binary not in BINARY_CHOICES:
        raise ConfigError(f"{where}: masking.binary must be one of {', '.join(BINARY_CHOICES)}")
    holdback = table.get("holdback_ms", 40)
    if isinstance(holdback, bool) or not isinstance(holdback, int) or not 1 <= holdback <= 1000:
        raise ConfigError(f"{where}: masking.holdback_ms must be a number of milliseconds (1-1000)")
    try:
        builtin = select(names)
        custom = _compile(patterns, "custom")
        per_role = {role: _compile(list(items), f"role:{role}") for role, items in roles.items()}
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return MaskingConfig(
        enabled=enabled,
        detectors=tuple(names),
        patterns=tuple(patterns),
        binary=binary,
        holdback_ms=holdback,
        compiled=builtin + custom,
        role_patterns={role: found for role, found in per_role.items() if found},
    )


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what} must be a list of strings")
    if len(value) > MAX_PATTERNS:
        raise ConfigError(f"{what}: at most {MAX_PATTERNS} entries")
    return value


def _compile(patterns: Sequence[str], name: str) -> tuple[Detector, ...]:
    return tuple(custom_detector(pattern, name) for pattern in patterns)


class ChannelMasking:
    """One masker per output stream of a channel, and what they found.

    `feed` raises only if a masker does (a bug): the relay then closes the
    channel rather than send unmasked output.
    """

    def __init__(self, config: MaskingConfig, detectors: Sequence[Detector], *, pty: bool) -> None:
        # A terminal does not carry binary faithfully anyway (it rewrites
        # newlines), so terminal output is always masked.
        binary = "mask" if pty else {"pass": "pass", "mask": "mask", "close": "stop"}[config.binary]
        self._make = lambda: Masker(detectors, binary=binary)
        self._maskers: dict[int | None, Masker] = {}
        self.binary_reported: set[int | None] = set()
        self._audited: Counter[str] = Counter()

    def feed(self, datatype: int | None, data: bytes) -> bytes:
        masker = self._maskers.get(datatype)
        if masker is None:
            masker = self._maskers[datatype] = self._make()
        return masker.feed(data)

    def flush(self) -> list[tuple[int | None, bytes]]:
        """What every stream holds back, released (idle timer, end of channel)."""
        out = []
        for datatype, masker in self._maskers.items():
            data = masker.flush()
            if data:
                out.append((datatype, data))
        return out

    @property
    def pending(self) -> bool:
        return any(masker.pending for masker in self._maskers.values())

    def new_binary(self) -> list[tuple[str, int]]:
        """Streams that turned binary since the last call: (stream name, byte offset)."""
        found = []
        for datatype, masker in self._maskers.items():
            if masker.binary_at is not None and datatype not in self.binary_reported:
                self.binary_reported.add(datatype)
                found.append((stream_name(datatype), masker.binary_at))
        return found

    def unaudited(self) -> dict[str, int]:
        """Findings counted since the last call, by detector name."""
        total: Counter[str] = Counter()
        for masker in self._maskers.values():
            total.update(masker.counts)
        delta = total - self._audited
        self._audited = total
        return dict(delta)


_GIT_SERVERS = {"git-upload-pack", "git-receive-pack", "git-upload-archive"}


def transfer_protocol(command: str | None) -> str | None:
    """The file-transfer protocol an exec command serves (scp, rsync, git), if any."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return None
    if not words:
        return None
    program = os.path.basename(words[0])
    if program == "scp" and any(
        w.startswith("-") and not w.startswith("--") and set(w[1:]) & {"f", "t"} for w in words[1:]
    ):
        return "scp"
    if program == "rsync" and "--server" in words:
        return "rsync"
    if program in _GIT_SERVERS:
        return "git"
    if program in ("sftp-server", "internal-sftp"):
        return "sftp"
    return None


def transfer_audit(protocol: str) -> dict[str, str]:
    """The audit row for a channel serving a file transfer: named as one, not as masking off.

    The relay writes `self._audit(**transfer_audit(protocol), command=...)` for
    such channels; the alert detector raises nothing for it by default.
    """
    return {"kind": "transfer", "detail": f"{protocol} file transfer: output not masked"}


def stream_name(datatype: int | None) -> str:
    return "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"


def describe_counts(counts: Mapping[str, int]) -> str:
    return " ".join(f"{name}={count}" for name, count in sorted(counts.items()))
