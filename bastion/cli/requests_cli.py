"""Held commands from the reviewer's side: bastion requests, approve, deny.

Locally (on the bastion host, reviewer `local:USER`) these open the state
database; with `--bastion HOST[:PORT]` they run the same verbs on a remote
bastion over SSH, as the identity of the certificate `bastion login` wrote.
"""

from __future__ import annotations

import getpass
import json
import shlex
import sys
import time
from pathlib import Path

import typer

from bastion import admin_verbs
from bastion.approvals import Reviewer, visible_requests
from bastion.cli.common import StateDirOption, open_state_store
from bastion.errors import BastionError
from bastion.remote_admin import run_remote

app = typer.Typer(help="Commands held for review.", invoke_without_command=True)
WATCH_POLL = 0.5

BastionOption = typer.Option(
    None,
    "--bastion",
    help="Run on this remote bastion (HOST[:PORT]) with your `bastion login` certificate.",
)
IdentityDirOption = typer.Option(
    None, "--identity-dir", help="Where `bastion login` wrote the key (default ~/.bastion)."
)


def _local_reviewer() -> Reviewer:
    return Reviewer(f"local:{getpass.getuser()}", local=True)


def _run(
    verb_line: str, state_dir_path: Path | None, bastion: str | None, ids: Path | None
) -> None:
    """Parse the verb exactly as the bastion's SSH side does, then run it here or there."""
    command = admin_verbs.parse(verb_line)
    if bastion is not None:
        result = run_remote(bastion, shlex.split(verb_line), ids)
        if result.stdout:
            typer.echo(result.stdout.rstrip("\n"))
        if result.status != 0:
            raise BastionError(result.stderr.strip().removeprefix("bastion: ") or "remote error")
        return
    with open_state_store(state_dir_path) as store:
        typer.echo(store.call(admin_verbs.run(store.store, _local_reviewer(), command)))


@app.callback()
def requests(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Include decided and expired requests."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    watch: bool = typer.Option(False, "--watch", help="Print new requests as they arrive."),
    bastion: str | None = BastionOption,
    identity_dir: Path | None = IdentityDirOption,
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """List pending requests (or all of them)."""
    if ctx.invoked_subcommand is not None:
        return
    if watch:
        if bastion is not None:
            raise BastionError("--watch runs on the bastion host only")
        _watch(state_dir_path, as_json)
        return
    verb = "requests" + (" --all" if show_all else "") + (" --json" if as_json else "")
    _run(verb, state_dir_path, bastion, identity_dir)


@app.command("show")
def show(
    request_id: int = typer.Argument(...),
    bastion: str | None = BastionOption,
    identity_dir: Path | None = IdentityDirOption,
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Everything about one request, as JSON."""
    _run(f"show {request_id}", state_dir_path, bastion, identity_dir)


def approve(
    request_id: int = typer.Argument(...),
    reason: str | None = typer.Option(None, help="Why (shown to the agent and audited)."),
    grant: str | None = typer.Option(
        None,
        "--for",
        help="Let the same command from the same identity pass for this long (e.g. 30m).",
    ),
    bastion: str | None = BastionOption,
    identity_dir: Path | None = IdentityDirOption,
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Let a held command run."""
    verb = ["approve", str(request_id)]
    if reason is not None:
        verb += ["--reason", reason]
    if grant is not None:
        verb += ["--for", grant]
    _run(shlex.join(verb), state_dir_path, bastion, identity_dir)


def deny(
    request_id: int = typer.Argument(...),
    reason: str | None = typer.Option(None, help="Why (shown to the agent and audited)."),
    bastion: str | None = BastionOption,
    identity_dir: Path | None = IdentityDirOption,
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Refuse a held command; the agent gets exit status 126 and the reason."""
    verb = ["deny", str(request_id)]
    if reason is not None:
        verb += ["--reason", reason]
    _run(shlex.join(verb), state_dir_path, bastion, identity_dir)


def _watch(state_dir_path: Path | None, as_json: bool) -> None:
    """Print pending requests, then every new one as it arrives, until interrupted."""
    reviewer = _local_reviewer()
    with open_state_store(state_dir_path) as store:
        newest = store.list_requests(include_decided=True, limit=1)
        last_id = newest[0].id if newest else 0
        rows = store.call(visible_requests(store.store, reviewer))  # pending now, then new ones
        try:
            while True:
                for row in rows:
                    last_id = max(last_id, row.id)
                    typer.echo(
                        json.dumps(row.to_json(), sort_keys=True)
                        if as_json
                        else admin_verbs.render_line(row)
                    )
                sys.stdout.flush()
                time.sleep(WATCH_POLL)
                rows = store.call(
                    visible_requests(store.store, reviewer, include_decided=True, after_id=last_id)
                )
        except KeyboardInterrupt:
            pass
