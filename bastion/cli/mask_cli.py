"""bastion mask: the output masker as a filter, stdin to stdout."""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, print_json, state_dir
from bastion.errors import UsageError
from bastion.masking import _POLICY, BINARY_CHOICES, MaskingConfig, describe_counts, parse_masking
from masking import (
    ENGINE,
    GROUPS,
    BinaryOutput,
    EncodedSecret,
    Found,
    Masker,
    Stopped,
    custom_detector,
    describe,
)

READ_SIZE = 64 * 1024


def register(app: typer.Typer) -> None:
    app.command("mask")(mask)


def mask(
    list_detectors: bool = typer.Option(False, "--list", help="Print the detectors and exit."),
    detector: list[str] = typer.Option(
        [], "--detector", "-d", help="Detector or group to use (repeatable; default: configured)."
    ),
    pattern: list[str] = typer.Option([], "--pattern", "-p", help="Extra regex (repeatable)."),
    binary: str | None = typer.Option(
        None, help="A secret in binary input: mask (same length), pass, or close (stop there)."
    ),
    stats: bool = typer.Option(False, "--stats", help="Print what was masked on stderr."),
    as_json: bool = typer.Option(False, "--json", help="With --list: machine-readable."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Mask secrets and personal data from stdin to stdout, as the relay does.

    Uses the [masking] settings of bastion.toml when the state dir has one,
    else every built-in detector. Streams: memory stays bounded whatever the
    input size.
    """
    config = _config(state_dir_path, detector, pattern, binary)
    if list_detectors:
        _list(config, as_json)
        return
    masker = Masker(
        config.compiled,
        binary=_POLICY[config.binary],
        hold=config.holdback_ms / 1000,
        echo=config.echo_ms / 1000,
    )
    _filter(masker)
    if stats:
        counts = describe_counts(masker.counts) or "nothing"
        typer.echo(f"bastion: masked {counts} (engine: {ENGINE})", err=True)
        for line in _event_lines(masker.take_events()):
            typer.echo(f"bastion: {line}", err=True)


def _event_lines(events: list[object]) -> list[str]:
    lines: list[str] = []
    for event in events:
        if isinstance(event, BinaryOutput):
            lines.append(f"binary input from byte {event.offset}")
        elif isinstance(event, EncodedSecret):
            lines.append(
                f"encoded secret: {event.detector} through {event.encoder} at byte {event.offset}"
            )
        elif isinstance(event, Stopped):
            lines.append(f"stopped at byte {event.offset}: {event.detector} in binary input")
        elif isinstance(event, Found) and not event.masked:
            lines.append(f"not masked (binary policy): {event.detector} at byte {event.offset}")
    return list(dict.fromkeys(lines))


def _config(
    path: Path | None, detectors: list[str], patterns: list[str], binary: str | None
) -> MaskingConfig:
    table: dict[str, object] = {}
    state = state_dir(path)
    warnings: list[str] = []
    if state.config_file.is_file():
        from bastion.config import load_config

        table = _as_table(load_config(state.config_file).masking)
    if detectors:
        table["detectors"] = detectors
    for regex in patterns:  # a bad -p is the caller's mistake (2), not the config's (5)
        try:
            custom_detector(regex, "custom")
        except ValueError as exc:
            raise UsageError(f"-p {regex!r}: {exc}") from None
    if patterns:
        table["patterns"] = list(table.get("patterns", [])) + patterns  # type: ignore[call-overload]
    if binary is not None:
        if binary not in BINARY_CHOICES:
            raise UsageError(f"--binary must be one of {', '.join(BINARY_CHOICES)}")
        table["binary"] = binary
    return parse_masking(table, "bastion mask", warnings)


def _as_table(config: MaskingConfig) -> dict[str, object]:
    return {
        "detectors": list(config.detectors),
        "patterns": list(config.patterns),
        "binary": config.binary,
        "holdback_ms": config.holdback_ms,
        "echo_ms": config.echo_ms,
    }


def _list(config: MaskingConfig, as_json: bool) -> None:
    chosen = {d.name for d in config.compiled}
    rows = [(name, text, name in chosen) for name, _, text in describe()]
    groups = {name: group for name, group, _ in describe()}
    if as_json:
        print_json(
            {
                "detectors": [
                    {"name": n, "group": groups[n], "description": t, "enabled": on}
                    for n, t, on in rows
                ],
                "groups": {name: list(members) for name, members in GROUPS.items()},
                "patterns": list(config.patterns),
            }
        )
        return
    width = max(len(name) for name, _, _ in rows)
    for name, text, on in rows:
        typer.echo(f"{'*' if on else ' '} {name:<{width}}  {text}")
    typer.echo(f"\n* enabled; groups: {', '.join(GROUPS)}")
    for regex in config.patterns:
        typer.echo(f"custom pattern: {regex}")


def _filter(masker: Masker) -> None:
    """Copy stdin to stdout through the masker; a held partial line waits until its deadline."""
    fd_in, out = sys.stdin.fileno(), sys.stdout.buffer
    while not masker.stopped:
        deadline = masker.deadline()
        if deadline is not None:
            ready, _, _ = select.select([fd_in], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                _write(out, masker.release())
                continue
        data = os.read(fd_in, READ_SIZE)
        if not data:
            break
        _write(out, masker.feed(data))
    _write(out, masker.flush())


def _write(out, data: bytes) -> None:  # type: ignore[no-untyped-def]
    if data:
        out.write(data)
        out.flush()
