"""Held commands from the reviewer's side: bastion requests, approve, deny (local, on the bastion host)."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, fmt_time, open_database, print_json, print_table
from bastion.errors import BastionError, UsageError
from bastion.store.repos import AuditRepo, RequestRepo

app = typer.Typer(help="Commands held for review.", invoke_without_command=True)
MAX_REASON = 500


@app.callback()
def requests(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Include decided and expired requests."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """List pending requests (or all of them)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = RequestRepo(open_database(state_dir_path)).list(include_decided=show_all)
    if as_json:
        print_json(rows)
        return
    now = time.time()
    print_table(
        ["id", "state", "identity", "where", "command", "rule", "created", "left"],
        [
            [
                str(r["id"]),
                r["state"],
                r["identity"],
                f"{r['login']}@{r['target']}",
                r["command"][:60],
                r["rule"] or "-",
                fmt_time(r["created"]),
                f"{max(0, int(r['expires'] - now))}s" if r["state"] == "pending" else "-",
            ]
            for r in rows
        ],
    )


@app.command("show")
def show(
    request_id: int = typer.Argument(...),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Everything about one request, as JSON."""
    print_json(RequestRepo(open_database(state_dir_path)).get(request_id))


def _reviewer() -> str:
    """The operator on the bastion host; remote reviewers come with their certificates' identity."""
    return f"local:{getpass.getuser()}"


def decide_request(
    request_id: int, approve: bool, reason: str | None, state_dir_path: Path | None
) -> None:
    if reason is not None and len(reason) > MAX_REASON:
        raise UsageError(f"--reason is longer than {MAX_REASON} characters")
    repo = RequestRepo(open_database(state_dir_path))
    request = repo.get(request_id)
    if request["state"] != "pending":
        raise BastionError(f"request {request_id} is already {request['state']}")
    if request["expires"] < time.time():
        raise BastionError(f"request {request_id} has expired")
    state = "approved" if approve else "denied"
    if not repo.finish(request_id, state, reviewer=_reviewer(), reason=reason):
        raise BastionError(f"request {request_id} was decided by someone else first")
    AuditRepo(repo.db).add(
        kind="review-decision",
        session_id=request["session_id"],
        identity=_reviewer(),
        target=request["target"],
        login=request["login"],
        command=request["command"],
        decision=state,
        rule=request["rule"],
        detail=f"request {request_id}: {reason or ''}".strip(),
    )
    typer.echo(f"request {request_id} {state}")


def approve(
    request_id: int = typer.Argument(...),
    reason: str | None = typer.Option(None, help="Why (shown to the agent and audited)."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Let a held command run."""
    decide_request(request_id, True, reason, state_dir_path)


def deny(
    request_id: int = typer.Argument(...),
    reason: str | None = typer.Option(None, help="Why (shown to the agent and audited)."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Refuse a held command; the agent gets exit status 126 and the reason."""
    decide_request(request_id, False, reason, state_dir_path)
