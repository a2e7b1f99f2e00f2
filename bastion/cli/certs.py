"""bastion cert issue and bastion ca export."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path

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
from bastion.errors import NotFound, NotInitialised, UsageError
from bastion.identity.authorities import CA_NAMES, Authorities
from bastion.identity.issuing import sign_user_certificate
from bastion.keyfiles import read_public_key

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
    key = read_public_key(pubkey, "--pubkey")
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"--out {out}: no directory {out.parent}")
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
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        except OSError as exc:
            raise UsageError(
                f"--out {out}: {exc.strerror or exc} (certificate serial {record.serial} was"
                " issued; revoke it or write it again)"
            ) from None
        typer.echo(f"wrote {out}", err=True)
    typer.echo(
        f"issued serial {record.serial} to {identity} for {', '.join(principal)}, valid {ttl}",
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
                r.identity,
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
    unknown_ok: bool = typer.Option(
        False,
        "--unknown-ok",
        help="With --identity: revoke it even if no certificate was ever issued to it.",
    ),
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
            if not unknown_ok and not store.list_certificates(identity=identity):
                raise NotFound(
                    f"no certificate was ever issued to {identity!r} (a typo?);"
                    " --unknown-ok revokes the name anyway"
                )
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
        lifted = store.lift_identity_revocation(identity, by=f"local:{getpass.getuser()}")
    typer.echo(f"lifted the revocation of {identity}" if lifted else f"{identity} was not revoked")


@ca_app.command("export")
def export(
    which: str = typer.Argument(..., help="user, host or target."),
    known_hosts: bool = typer.Option(
        False,
        "--known-hosts",
        help="host only: the whole known_hosts line, `@cert-authority * KEY`.",
    ),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Print a CA's public key line.

    host: paste after `@cert-authority *` in agents' known_hosts (or use
    --known-hosts for the whole line). target: put in targets'
    TrustedUserCAKeys. user: for tools that verify agent certificates.
    """
    if which not in CA_NAMES:
        raise UsageError(f"unknown CA {which!r}: choose user, host or target")
    if known_hosts and which != "host":
        raise UsageError("--known-hosts goes with `ca export host` only")
    line = _public_line(state_dir_path, f"{which}_ca.pub")
    typer.echo(f"@cert-authority * {line}" if known_hosts else line)


def host_key(
    known_hosts: str | None = typer.Option(
        None,
        "--known-hosts",
        metavar="HOST[:PORT]",
        help="Print a known_hosts line for this address instead of the bare key.",
    ),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Print the bastion's own host public key, to pin where a client cannot use the host CA.

    paramiko (and so Fabric) cannot read `@cert-authority` lines: give such
    clients this key for the bastion. It is the same key for every name the
    bastion answers to, and for the targets it presents in process.
    """
    line = _public_line(state_dir_path, "host_key.pub")
    key = " ".join(line.split()[:2])
    if known_hosts is None:
        typer.echo(key)
        return
    from bastion.config import parse_bastion_address

    host, port = parse_bastion_address(known_hosts)
    typer.echo(f"{host if port == 22 else f'[{host}]:{port}'} {key}")


def _public_line(state_dir_path: Path | None, name: str) -> str:
    state = state_dir(state_dir_path)
    if not state.is_initialised():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    pub = state.keys / name
    if not pub.is_file():
        raise NotInitialised(f"{pub} is missing: run `bastion init` first")
    return pub.read_text().strip()
