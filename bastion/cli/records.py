"""What operators read back: sessions, replay, export, audit."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import BinaryIO

import typer

from bastion.cli.common import (
    StateDirOption,
    fmt_time,
    open_database,
    print_json,
    print_table,
    state_dir,
)
from bastion.config import load_config
from bastion.errors import BastionError, NotFound, UsageError
from bastion.recordings import RecordingUnavailable, open_recording
from bastion.search import index_one, unindexed
from bastion.search import search as search_screen
from bastion.store.alerts import AlertRepo
from bastion.store.recording_catalog import RecordingRepo
from bastion.store.repos import AuditRepo, SessionRepo


def register(app: typer.Typer) -> None:
    app.command("sessions")(sessions)
    app.command("replay")(replay)
    app.command("export")(export)
    app.add_typer(audit_app, name="audit")
    app.command("search")(search)
    app.command("alerts")(alerts)


audit_app = typer.Typer(
    help="Commands, shell lines, decisions and refusals; `verify` checks the hash chain.",
    invoke_without_command=True,
)


def sessions(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    limit: int = typer.Option(1000, min=1, max=100000, help="Newest N sessions."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """List recorded sessions, oldest first."""
    rows = SessionRepo(open_database(state_dir_path)).list(limit)
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    print_table(
        ["id", "started", "identity", "target", "kind", "command", "exit", "out"],
        [
            [
                r.id,
                fmt_time(r.started),
                r.identity,
                f"{r.login}@{r.target}",
                r.kind,
                _clip(r.command or ""),
                "-" if r.exit_status is None else str(r.exit_status),
                str(r.bytes_out),
            ]
            for r in rows
        ],
    )


def _open_recording(session_id: str, state_dir_path: Path | None) -> BinaryIO:
    """The session's recording, from whichever store holds it, as whole lines."""
    db = open_database(state_dir_path)
    SessionRepo(db).get(session_id)  # NotFound for an unknown session
    row = RecordingRepo(db).locate(session_id)
    if row is None:
        raise NotFound(f"session {session_id} has no recording")
    state = state_dir(state_dir_path)
    try:
        return open_recording(row, load_config(state.config_file).recordings, state.root)
    except RecordingUnavailable as exc:
        raise NotFound(str(exc)) from None


def replay(
    session_id: str = typer.Argument(...),
    speed: float = typer.Option(1.0, help="Playback speed multiplier."),
    idle_limit: float | None = typer.Option(None, help="Cap pauses at this many seconds."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Play a session's recording in this terminal."""
    from recorder import CastFormatError, read_cast
    from recorder import replay as play

    if speed <= 0:
        raise UsageError("--speed must be greater than 0")
    if idle_limit is not None and idle_limit < 0:
        raise UsageError("--idle-limit must not be negative")
    stream = _open_recording(session_id, state_dir_path)
    try:
        cast = read_cast(stream, f"recording of session {session_id}")
    except CastFormatError as exc:
        raise BastionError(f"cannot replay: {exc}") from None
    except (OSError, RecordingUnavailable) as exc:
        raise BastionError(f"cannot read the recording of session {session_id}: {exc}") from None
    play(cast, sys.stdout, speed=speed, idle_limit=idle_limit)
    sys.stdout.flush()


def export(
    session_id: str = typer.Argument(...),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Write a session's asciicast v2 file to stdout."""
    with _open_recording(session_id, state_dir_path) as handle:
        try:
            shutil.copyfileobj(handle, sys.stdout.buffer, 1 << 20)
        except OSError as exc:
            raise BastionError(
                f"cannot read the recording of session {session_id}: {exc}"
            ) from None
    sys.stdout.flush()


@audit_app.callback()
def audit(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    session: str | None = typer.Option(None, help="Only rows of this session."),
    limit: int = typer.Option(1000, min=1, max=100000, help="Newest N rows."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Commands, shell lines and refusals, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    rows = AuditRepo(open_database(state_dir_path)).list(session, limit)
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    print_table(
        ["time", "kind", "session", "identity", "where", "command", "decision", "exit", "detail"],
        [
            [
                fmt_time(r.time),
                r.kind,
                r.session_id or "-",
                r.identity or "-",
                f"{r.login or '-'}@{r.target or '-'}",
                _clip(r.command or ""),
                r.decision or "-",
                "-" if r.exit_status is None else str(r.exit_status),
                _clip(r.detail or ""),
            ]
            for r in rows
        ],
    )


@audit_app.command("verify")
def verify(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Check that no audit row was edited, deleted or slipped in; print the chain's head."""
    result = AuditRepo(open_database(state_dir_path)).verify()
    if as_json:
        print_json(result.to_json())
    else:
        for problem in result.problems:
            typer.echo(f"bastion: {problem}", err=True)
        if result.unchained:
            typer.echo(f"{result.unchained} rows predate the chain and are not covered")
        state = "intact" if result.intact else f"BROKEN ({len(result.problems)} problems)"
        typer.echo(f"audit chain {state}: {result.rows} rows, {result.entries} entries")
        typer.echo(f"head {result.head}")
    if not result.intact:
        raise typer.Exit(1)


def search(
    query: str = typer.Argument(..., help="Text to find (a phrase; --fts for FTS5 syntax)."),
    identity: str | None = typer.Option(None, help="Only sessions of this identity."),
    target: str | None = typer.Option(None, help="Only sessions on this target."),
    fts: bool = typer.Option(False, "--fts", help="QUERY is an FTS5 query (AND, OR, NEAR, x*)."),
    reindex: bool = typer.Option(
        False, "--reindex", help="First index ended sessions the bastion has not indexed."
    ),
    limit: int = typer.Option(50, min=1, max=10000, help="At most N matches."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Find sessions by what was on their screen; shows where to replay from."""
    db = open_database(state_dir_path)
    if reindex:
        state = state_dir(state_dir_path)
        config = load_config(state.config_file).recordings
        pending = unindexed(db, limit=100000)
        for session_id, kind in pending:
            index_one(db, session_id, kind, config, state.root)
        typer.echo(f"indexed {len(pending)} sessions", err=True)
    rows = search_screen(db, query, raw=fts, identity=identity, target=target, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["session", "at", "identity", "where", "command", "match"],
        [
            [
                r["session_id"],
                f"{r['at']:.1f}s",
                r["identity"],
                f"{r['login']}@{r['target']}",
                _clip(r["command"] or r["kind"], 24),
                _clip(" ".join(r["snippet"].split()), 80),
            ]
            for r in rows
        ],
    )


def alerts(
    identity: str | None = typer.Option(None, help="Only alerts about this identity."),
    kind: str | None = typer.Option(
        None, help="rule, denied-streak, burst, forward-refused or output-volume."
    ),
    limit: int = typer.Option(1000, min=1, max=100000, help="Newest N alerts."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Alerts raised by the bastion, oldest first."""
    rows = AlertRepo(open_database(state_dir_path)).list(identity=identity, kind=kind, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["time", "kind", "identity", "session", "target", "detail"],
        [
            [
                fmt_time(r["time"]),
                r["kind"],
                r["identity"] or "-",
                r["session_id"] or "-",
                r["target"] or "-",
                _clip(r["detail"], 70),
            ]
            for r in rows
        ],
    )


def _clip(text: str, width: int = 48) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"
