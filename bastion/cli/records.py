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
    open_state_store,
    print_json,
    print_table,
    state_dir,
)
from bastion.config import load_config
from bastion.errors import BastionError, NotFound, UsageError
from bastion.recordings import RecordingUnavailable, open_recording
from bastion.search import index_one


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
    with open_state_store(state_dir_path) as store:
        rows = store.list_sessions(limit)
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    print_table(
        ["id", "node", "started", "identity", "target", "kind", "command", "exit", "out"],
        [
            [
                r.id,
                r.node or "-",
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
    with open_state_store(state_dir_path) as store:
        record = store.get_session(session_id)
    if not record.recording:
        raise NotFound(f"session {session_id} has no recording")
    state = state_dir(state_dir_path)
    try:
        return open_recording(
            record.recording, load_config(state.config_file).recordings, state.root
        )
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
    except OSError as exc:
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
    with open_state_store(state_dir_path) as store:
        rows = store.list_audit(session, limit)
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
    head: str | None = typer.Option(
        None, "--head", help="Fail unless the chain ends at or extends this head hash."
    ),
    anchor_file: Path | None = typer.Option(
        None, "--anchor", help="An anchor file from `bastion audit anchor` (signature checked)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Check that no audited row was edited, deleted or slipped in; print the chain's head."""
    from bastion.audit_anchor import read_anchor

    if head is not None and (len(head) != 64 or any(c not in "0123456789abcdef" for c in head)):
        raise UsageError("--head must be a chain head: 64 lowercase hex digits")
    if anchor_file is not None:
        head = str(read_anchor(anchor_file)["head"])
    with open_state_store(state_dir_path) as store:
        result = store.verify_chain(head)
    if as_json:
        print_json(result.to_json())
    else:
        for problem in result.problems:
            typer.echo(f"bastion: {problem}", err=True)
        if result.unchained:
            typer.echo(f"{result.unchained} rows predate the chain and are not covered")
        state = "intact" if result.intact else f"BROKEN ({len(result.problems)} problems)"
        typer.echo(f"audit chain {state}: {result.rows} rows, {result.entries} entries")
        if result.anchored:
            typer.echo(f"it ends at or extends head {head}")
        typer.echo(f"head {result.head}")
    if not result.intact:
        raise typer.Exit(1)


@audit_app.command("anchor")
def anchor(
    post: bool = typer.Option(False, "--post", help="Also POST it to the [alerts] webhook."),
    sign: bool = typer.Option(False, "--sign", help="Sign it with [audit] anchor_key."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Print the chain's head with the time, as JSON, to keep somewhere else."""
    import time

    from bastion.audit_anchor import make_anchor
    from bastion.cli.common import state_dir
    from bastion.config import load_config
    from bastion.notify import Webhook

    state = state_dir(state_dir_path)
    config = load_config(state.config_file)
    key_file = None
    if sign:
        if config.audit.anchor_key is None:
            raise UsageError("--sign needs [audit] anchor_key = FILE in bastion.toml")
        key_file = state.root / config.audit.anchor_key
    with open_state_store(state_dir_path) as store:
        head = store.chain_head()
    made = make_anchor(head, time.time(), key_file)
    if post:
        if config.alerts.webhook is None:
            raise UsageError("--post needs [alerts] webhook in bastion.toml")
        try:
            Webhook(config.alerts.webhook).post_now({"event": "audit.anchor", "anchor": made})
        except Exception as exc:  # a webhook that failed: say so, exit non-zero
            raise BastionError(f"posting the anchor failed: {exc}") from None
    print_json(made)


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
    with open_state_store(state_dir_path) as store:
        if reindex:
            state = state_dir(state_dir_path)
            recordings = load_config(state.config_file).recordings
            pending = store.unindexed_sessions(limit=100000)
            for item in pending:
                store.call(index_one(store.store, item, recordings, state.root))
            typer.echo(f"indexed {len(pending)} sessions", err=True)
        hits = store.search_screen(query, raw=fts, identity=identity, target=target, limit=limit)
    rows = [hit.to_json() for hit in hits]
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
    with open_state_store(state_dir_path) as store:
        rows = store.list_alerts(identity=identity, kind=kind, limit=limit)
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    print_table(
        ["time", "kind", "identity", "session", "target", "detail"],
        [
            [
                fmt_time(r.time),
                r.kind,
                r.identity or "-",
                r.session_id or "-",
                r.target or "-",
                _clip(r.detail, 70),
            ]
            for r in rows
        ],
    )


def _clip(text: str, width: int = 48) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"
