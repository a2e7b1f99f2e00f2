"""Where a relayed channel's output meets the masker: settings, and one masker per channel.

The relay hands every chunk of target output (stdout and stderr apart) to
the channel's masker and sends what comes back; the recording is written
from the same masked bytes, so it holds what the agent saw. The masking
library (`masking/`) does the work; this module reads `[masking]` (and each
role's `mask_patterns`) and builds, per channel, either a `ChannelMasker`
(the library's API: feed, deadline, release, flush, events) with
`MaskingConfig.channel()`, or the `ChannelMasking` adapter that today's
relay (bastion/ssh/session.py) calls.

File transfers (SFTP, and exec channels serving `scp -f/-t`, `rsync
--server`, `git-upload-pack`...) are never changed: a replacement would
corrupt the transfer. `MaskingConfig.channel(..., transfer=True)` gives a
masker that scans and reports without changing a byte.
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
from masking import BUILTIN, ChannelMasker, Detector, custom_detector, select
from masking.events import BinaryOutput, Stopped

BINARY_CHOICES = ("mask", "pass", "close")
_POLICY = {"mask": "mask", "pass": "pass", "close": "stop"}
_KEYS = {"enabled", "detectors", "patterns", "binary", "holdback_ms", "echo_ms"}
MAX_PATTERNS = 64


@dataclass(frozen=True)
class MaskingConfig:
    """The `[masking]` table, with its patterns compiled once at load."""

    enabled: bool = True
    detectors: tuple[str, ...] = ("all",)
    patterns: tuple[str, ...] = ()
    binary: str = "mask"  # a secret in binary exec output: mask | pass | close
    holdback_ms: int = 40
    echo_ms: int = 5
    compiled: tuple[Detector, ...] = BUILTIN
    role_patterns: Mapping[str, tuple[Detector, ...]] = field(default_factory=dict)

    def detectors_for(self, roles: Iterable[str]) -> tuple[Detector, ...]:
        extra: list[Detector] = []
        for role in roles:
            extra.extend(self.role_patterns.get(role, ()))
        return self.compiled + tuple(extra)

    def channel(
        self,
        roles: Iterable[str] = (),
        *,
        terminal: bool = False,
        transfer: bool = False,
        screen: tuple[int, int] | None = None,
    ) -> ChannelMasker:
        """The masker for one channel (the library API the relay calls)."""
        return ChannelMasker(
            self.detectors_for(roles),
            terminal=terminal,
            binary=_POLICY[self.binary],
            modify=not transfer,
            hold=self.holdback_ms / 1000,
            echo=self.echo_ms / 1000,
            screen=screen if terminal else None,
        )


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
    binary = table.get("binary", "mask")
    if binary not in BINARY_CHOICES:
        raise ConfigError(f"{where}: masking.binary must be one of {', '.join(BINARY_CHOICES)}")
    holdback = _milliseconds(table, "holdback_ms", 40, 1, where)
    echo = _milliseconds(table, "echo_ms", 5, 0, where)
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
        echo_ms=echo,
        compiled=builtin + custom,
        role_patterns={role: found for role, found in per_role.items() if found},
    )


def _milliseconds(table: dict[str, Any], key: str, default: int, low: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1000:
        raise ConfigError(f"{where}: masking.{key} must be a number of milliseconds ({low}-1000)")
    return value


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
    """The adapter today's relay calls: a ChannelMasker behind the relay's old methods.

    Today's relay releases held bytes only after `holdback_ms` without output
    (it calls `flush()`); so that typed echo is not delayed through it,
    terminal channels send a partial line that cannot be a secret's start at
    once (`echo = 0`). `feed` raises only if a masker does (a bug): the relay
    then closes the channel rather than send unmasked output.
    """

    def __init__(
        self,
        config: MaskingConfig,
        detectors: Sequence[Detector],
        *,
        pty: bool,
        screen: tuple[int, int] | None = (80, 24),
    ) -> None:
        self.masker = ChannelMasker(
            detectors,
            terminal=pty,
            binary=_POLICY[config.binary],
            hold=config.holdback_ms / 1000,
            echo=0.0 if pty else config.echo_ms / 1000,
            screen=screen if pty else None,
        )
        self.binary_reported: set[str] = set()
        self._policy = config.binary
        self._audited: Counter[str] = Counter()
        self.alerts: list[object] = []  # events the relay has no row for yet (the lead wires them)

    def feed(self, datatype: int | None, data: bytes) -> bytes:
        return self.masker.feed(stream_name(datatype), data)

    def flush(self) -> list[tuple[int | None, bytes]]:
        """What every stream holds back, released (idle timer, end of channel)."""
        return [(_datatype(stream), data) for stream, data in self.masker.flush().items()]

    @property
    def pending(self) -> bool:
        return self.masker.pending

    def new_binary(self) -> list[tuple[str, int]]:
        """Streams whose binary output the relay must act on: (stream name, byte offset).

        With `binary = "pass"`, a stream that turned binary (its secrets go
        through, reported); with `"close"`, a stream where a secret was found in
        binary output (the relay closes the channel; nothing of it was sent).
        """
        found = []
        for event in self.masker.events():
            if isinstance(event, BinaryOutput) and self._policy == "pass":
                if event.stream not in self.binary_reported:
                    self.binary_reported.add(event.stream)
                    found.append((event.stream, event.offset))
            elif isinstance(event, Stopped):
                found.append((event.stream, event.offset))
            elif not isinstance(event, BinaryOutput):
                self.alerts.append(event)
        return found

    def unaudited(self) -> dict[str, int]:
        """Findings counted since the last call, by detector name."""
        total = Counter(self.masker.counts())
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
    return {"kind": "transfer", "detail": f"{protocol} file transfer: output scanned, not modified"}


def stream_name(datatype: int | None) -> str:
    return "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"


def _datatype(stream: str) -> int | None:
    return asyncssh.EXTENDED_DATA_STDERR if stream == "stderr" else None


def describe_counts(counts: Mapping[str, int]) -> str:
    return " ".join(f"{name}={count}" for name, count in sorted(counts.items()))
