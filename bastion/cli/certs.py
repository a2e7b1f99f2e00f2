"""bastion cert issue and bastion ca export."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path

import asyncssh
import typer

from bastion.cli.common import (
    StateDirOption,
    fmt_time,
    open_state_store,
    print_json,
    print_table,
    state_dir,
)
from bastion.durations import parse_duration
from bastion.errors import UsageError
from bastion.identity.authorities import CA_NAMES, Authorities
from bastion.identity.issuing import sign_user_certificate
from bastion.identity.names import nfkc, shown_identity

cert_app = typer.Typer(no_args_is_help=True, help="Agent certificates signed by the user CA.")
ca_app = typer.Typer(no_args_is_help=True, help="The bastion's certificate authorities.")


@cert_app.command("issue")
def issue(
    identity: str = typer.Option(..., help="Who the certificate is for (its key id)."),
    principal: list[str] = typer.Option(..., help="Target login it may use (repeatable)."),
    group: list[str] = typer.Option([], help="Group for role matching (repeatable)."),
    pubkey: Path = typer.Option(..., help="The agent's OpenSSH public key file."),
    ttl: str = typer.Option("10m", help="Validity, e.g. 10m, 1h (at most 24h)."),
    out: Path | None = typer.Option(None, help="Write the certificate here (else stdout)."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Sign an agent's public key with the user CA."""
    seconds = parse_duration(ttl)
    try:
        key = asyncssh.read_public_key(pubkey)
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        raise UsageError(f"cannot read public key {pubkey}: {exc}") from None
    state = state_dir(state_dir_path)
    cert, record = sign_user_certificate(
        Authorities(state.keys),
        key,
        identity=identity,
        principals=principal,
        groups=group,
        ttl=seconds,
        source="cli",
    )
    with open_state_store(state_dir_path) as store:
        store.record_certificate(record)
    text = cert.export_certificate().decode()
    if out is None:
        typer.echo(text, nl=False)
    else:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        typer.echo(f"wrote {out}", err=True)
    typer.echo(
        f"issued serial {record.serial} to {record.identity} for {', '.join(principal)}, valid {ttl}",
        err=True,
    )


@cert_app.command("list")
def list_certificates(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Every certificate the user CA signed, with its state."""
    with open_state_store(state_dir_path) as store:
        records = store.list_certificates()
    if as_json:
        print_json([record.to_json() for record in records])
        return
    now = time.time()
    print_table(
        ["serial", "identity", "principals", "groups", "issued", "valid until", "state", "source"],
        [
            [
                str(r.serial),
                shown_identity(r.identity),
                ",".join(r.principals),
                ",".join(r.groups),
                fmt_time(r.issued),
                fmt_time(r.valid_before),
                "revoked" if r.revoked else ("expired" if r.valid_before < now else "valid"),
                r.source,
            ]
            for r in records
        ],
    )


@cert_app.command("revoke")
def revoke(
    serial: str | None = typer.Argument(None, help="Serial of one certificate."),
    identity: str | None = typer.Option(None, help="Revoke every certificate of this identity."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Revoke certificates; a running bastion closes their sessions within seconds."""
    if (serial is None) == (identity is None):
        raise UsageError("give a SERIAL or --identity ID, not both")
    if serial is not None and (not serial.isdigit() or len(serial) > 20):
        raise UsageError(f"invalid serial {serial!r}: expected a number")
    by = f"local:{getpass.getuser()}"
    with open_state_store(state_dir_path) as store:
        if serial is not None:
            changed = store.revoke_serial(int(serial), by=by)
            typer.echo(
                f"revoked serial {serial}" if changed else f"serial {serial} was already revoked"
            )
        else:
            assert identity is not None
            identity = nfkc(identity)
            count = store.revoke_identity(identity, by=by)
            typer.echo(
                f"revoked {count} certificate(s) of {identity}; no new certificate is issued"
                f" to it until `bastion cert unrevoke --identity {identity}`"
            )


@cert_app.command("unrevoke")
def unrevoke(
    identity: str = typer.Option(..., help="Lift the revocation of this identity."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Let a revoked identity get certificates again (its revoked ones stay revoked)."""
    with open_state_store(state_dir_path) as store:
        identity = nfkc(identity)
        lifted = store.lift_identity_revocation(identity, by=f"local:{getpass.getuser()}")
    typer.echo(f"lifted the revocation of {identity}" if lifted else f"{identity} was not revoked")


@ca_app.command("export")
def export(
    which: str = typer.Argument(..., help="user, host or target."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Print a CA's public key line.

    host: paste after `@cert-authority *` in agents' known_hosts.
    target: put in targets' TrustedUserCAKeys.
    user: for tools that verify agent certificates.
    """
    if which not in CA_NAMES:
        raise UsageError(f"unknown CA {which!r}: choose user, host or target")
    state = state_dir(state_dir_path)
    pub = state.keys / f"{which}_ca.pub"
    if not pub.is_file():
        raise UsageError(f"{pub} is missing: run `bastion init` first")
    typer.echo(pub.read_text().strip())
