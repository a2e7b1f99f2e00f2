"""Shared CLI plumbing: the --state-dir option, output helpers, time formatting."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import typer

from bastion.statedir import StateDir
from bastion.store import BlockingStore, open_store

StateDirOption = typer.Option(
    None,
    "--state-dir",
    help="State directory (else $BASTION_HOME, else ~/.local/state/bastion).",
    show_default=False,
)


def state_dir(path: Path | None) -> StateDir:
    return StateDir.resolve(path)


def state_store_url(path: Path | None) -> str:
    """The state dir's store URL (`[store] url`, else its bastion.db)."""
    from bastion.config import load_config
    from bastion.errors import NotInitialised

    state = state_dir(path)
    if not state.is_initialised():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    return state.store_url(load_config(state.config_file).store.url)


def cli_node() -> str:
    return f"cli@{socket.gethostname()}"


def open_state_store(path: Path | None) -> BlockingStore:
    """The state dir's store, opened; use it in a `with` block."""
    return BlockingStore(open_store(state_store_url(path), node=cli_node()))


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def fmt_time(value: float | None) -> str:
    if value is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=False))
    typer.echo(line.rstrip())
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())
