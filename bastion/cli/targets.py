"""bastion targets add|list|remove."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import typer

from bastion.cli.common import StateDirOption, open_state_store, print_json, print_table
from bastion.errors import BastionError, UsageError
from bastion.keyfiles import read_key_text
from bastion.targets import (
    Target,
    normalise_public_key,
    parse_labels,
    validate_port,
    validate_target_name,
)

app = typer.Typer(no_args_is_help=True, help="Register the servers agents may reach.")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The name agents use: ssh -J bastion LOGIN@NAME."),
    host: str = typer.Option(..., help="Address the bastion connects to."),
    port: int = typer.Option(22, help="SSH port on the target."),
    host_key: Path | None = typer.Option(None, help="Pin this OpenSSH public key file."),
    host_ca: Path | None = typer.Option(None, help="Trust host certificates from this CA."),
    scan: bool = typer.Option(False, help="Fetch the target's key now, print it and pin it."),
    label: list[str] = typer.Option([], help="key=value label (repeatable)."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Register a target; its upstream host key is always verified."""
    validate_target_name(name)
    validate_port(port)
    labels = parse_labels(label)
    if sum((host_key is not None, host_ca is not None, scan)) != 1:
        raise UsageError("give exactly one of --host-key FILE, --host-ca FILE or --scan")
    with open_state_store(state_dir_path) as store:
        if store.get_target(name) is not None:
            raise UsageError(f"target {name!r} already exists; remove it first")
    pinned_key = pinned_ca = None
    if host_key is not None:
        text = read_key_text(host_key, "--host-key")
        pinned_key = normalise_public_key(text, f"--host-key {host_key}")
    elif host_ca is not None:
        pinned_ca = normalise_public_key(
            read_key_text(host_ca, "--host-ca"), f"--host-ca {host_ca}"
        )
    else:
        pinned_key = asyncio.run(_scan(host, port))
        fingerprint = asyncssh.import_public_key(pinned_key).get_fingerprint()
        typer.echo(f"scanned {host}:{port}: {fingerprint}")
    target = Target(name, host, port, pinned_key, pinned_ca, labels)
    with open_state_store(state_dir_path) as store:
        store.add_target(target)
    typer.echo(f"added target {name} ({host}:{port}, {target.verification})")


async def _scan(host: str, port: int) -> str:
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port, server_host_key_algs=["ssh-ed25519"]),
            timeout=15,
        )
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise BastionError(f"cannot scan {host}:{port}: {exc}") from None
    if key is None:
        raise BastionError(f"{host}:{port} sent no host key")
    return key.export_public_key().decode().strip()


@app.command("list")
def list_targets(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """List registered targets."""
    with open_state_store(state_dir_path) as store:
        targets = store.list_targets()
    if as_json:
        print_json(
            [
                {
                    "name": t.name,
                    "host": t.host,
                    "port": t.port,
                    "host_key": t.host_key,
                    "host_ca": t.host_ca,
                    "labels": t.labels,
                }
                for t in targets
            ]
        )
        return
    print_table(
        ["name", "address", "verified by", "labels"],
        [
            [
                t.name,
                f"{t.host}:{t.port}",
                t.verification,
                ",".join(f"{k}={v}" for k, v in sorted(t.labels.items())),
            ]
            for t in targets
        ],
    )


@app.command("remove")
def remove(
    name: str = typer.Argument(...),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Remove a target; agents can no longer reach it."""
    with open_state_store(state_dir_path) as store:
        store.remove_target(name)
    typer.echo(f"removed target {name}")
