"""bastion mask: the output masker as a filter, stdin to stdout."""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, print_json, state_dir
from bastion.errors import UsageError
from bastion.masking import BINARY_CHOICES, MaskingConfig, describe_counts, parse_masking
from rules.masking import GROUPS, Masker, custom_detector, describe

READ_SIZE = 64 * 1024


def register(app: typer.Typer) -> None:
    app.command("mask")(mask)


def mask(
    list_detectors: bool = typer.Option(False, "--list", help="Print the detectors and exit."),
    detector: list[str] = typer.Option(
        [], "--detector", "-d", help="Detector or group to use (repeatable; default: configured)."
    ),
    pattern: list[str] = typer.Option([], "--pattern", "-p", help="Extra regex (repeatable)."),
    binary: str | None = typer.Option(None, help="Binary input: pass, mask or close."),
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
    policy = {"pass": "pass", "mask": "mask", "close": "stop"}[config.binary]
    masker = Masker(config.compiled, binary=policy)
    _filter(masker, config.holdback_ms / 1000)
    if stats:
        counts = describe_counts(masker.counts) or "nothing"
        typer.echo(f"bastion: masked {counts}", err=True)
        if masker.binary_at is not None:
            typer.echo(f"bastion: binary input from byte {masker.binary_at}", err=True)


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
    }


def _list(config: MaskingConfig, as_json: bool) -> None:
    chosen = {d.name for d in config.compiled}
    rows = [(name, text, name in chosen) for name, text, _ in describe()]
    if as_json:
        print_json(
            {
                "detectors": [{"name": n, "description": t, "enabled": on} for n, t, on in rows],
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


def _filter(masker: Masker, holdback: float) -> None:
    """Copy stdin to stdout through the masker; a partial line waits at most `holdback`."""
    fd_in, out = sys.stdin.fileno(), sys.stdout.buffer
    while True:
        if masker.pending:
            ready, _, _ = select.select([fd_in], [], [], holdback)
            if not ready:
                _write(out, masker.flush())
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
