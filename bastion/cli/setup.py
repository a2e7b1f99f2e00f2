"""init, serve and demo."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, state_dir
from bastion.errors import UsageError

config_app = typer.Typer(no_args_is_help=True, help="bastion.toml.")


@config_app.command("check")
def config_check(state_dir_path: Path | None = StateDirOption) -> None:
    """Validate bastion.toml and the policies it names; errors name the line."""
    from bastion.config import load_config
    from bastion.decide import Decider

    state = state_dir(state_dir_path)
    config = load_config(state.config_file)
    Decider.from_names(
        config.rules.policy,
        config.rules.default_action,
        state.root,
        config.roles,
        unknown_action=config.rules.unknown_action,
    )
    for warning in config.warnings:
        typer.echo(f"warning: {warning}", err=True)
    roles = (
        f"{len(config.roles)} role(s)"
        if config.roles
        else "no roles (certificate principals decide)"
    )
    typer.echo(
        f"{state.config_file}: ok; {roles}, {len(config.issuers)} issuer(s), policies {', '.join(config.rules.policy)}"
    )


def login(
    bastion: str = typer.Option(..., help="HOST[:PORT] of the bastion's SSH port."),
    token_file: Path | None = typer.Option(None, help="Read the OIDC token from this file."),
    token_env: str | None = typer.Option(None, help="Read the OIDC token from this variable."),
    device: bool = typer.Option(
        False, "--device", help="Sign in in a browser (OAuth 2.0 device authorization grant)."
    ),
    issuer: str | None = typer.Option(None, help="The OIDC issuer URL (with --device)."),
    client_id: str = typer.Option("bastion-cli", help="OAuth client id (with --device)."),
    out: Path = typer.Option(Path("~/.bastion"), help="Where to write key, certificate, config."),
    host_ca: Path | None = typer.Option(
        None, help="The bastion's host CA public key (first login)."
    ),
) -> None:
    """Exchange an OIDC token for a short-lived SSH certificate."""
    from bastion.identity.device import device_login
    from bastion.login import login as do_login
    from bastion.login import read_token

    if device:
        if token_file is not None or token_env is not None:
            raise UsageError("--device takes no --token-file or --token-env")
        if not issuer:
            raise UsageError("--device needs --issuer URL (the OIDC issuer to sign in with)")
        token = device_login(issuer, client_id, say=lambda text: typer.echo(text, err=True))
    else:
        token = read_token(token_file, token_env)
    result = do_login(bastion, token, out.expanduser(), host_ca)
    typer.echo(
        f"certificate serial {result.serial} for {result.identity}, logins {', '.join(result.principals)}"
    )
    typer.echo(f"ssh -F {result.ssh_config} {result.principals[0]}@TARGET 'COMMAND'")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.command("login")(login)
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("demo")(demo)


def init(
    state_dir_path: Path | None = StateDirOption,
    listen: str | None = typer.Option(None, help="HOST:PORT written into a new bastion.toml."),
) -> None:
    """Create the state dir: config, database, recordings folder and CA keys."""
    from bastion.config import parse_listen
    from bastion.setup_state import initialise

    if listen:
        parse_listen(listen)
    state = state_dir(state_dir_path)
    created = initialise(state, listen=listen)
    if created:
        typer.echo(f"initialised {state.root}: created {', '.join(created)}")
    else:
        typer.echo(f"{state.root} already initialised; nothing changed")


def serve(
    state_dir_path: Path | None = StateDirOption,
    listen: str | None = typer.Option(None, help="HOST:PORT (default: server.listen)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    init_first: bool = typer.Option(
        False, "--init", help="Initialise the state dir first if needed (containers)."
    ),
) -> None:
    """Run the bastion until SIGTERM or Ctrl-C."""
    from bastion.server import open_bastion, run_bastion
    from bastion.setup_state import initialise

    if init_first:
        initialise(state_dir(state_dir_path), listen=listen)

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    bastion = open_bastion(state_dir(state_dir_path))
    try:
        asyncio.run(run_bastion(bastion, listen))
    except OSError as exc:
        from bastion.errors import BastionError

        raise BastionError(f"cannot listen: {exc.strerror or exc}") from None
    finally:
        bastion.db.close()


def demo(
    script: bool = typer.Option(False, "--script", help="Run a scripted tour and exit."),
    keep: bool = typer.Option(False, help="Keep the temporary state dir afterwards."),
    target: str = typer.Option("auto", help="auto, sshd (a real OpenSSH sshd) or embedded."),
) -> None:
    """A bastion, a target and a demo agent in a temporary dir, with ssh commands to try."""
    from bastion.demo import run_demo

    if target not in ("auto", "sshd", "embedded"):
        raise UsageError("--target must be auto, sshd or embedded")
    raise typer.Exit(run_demo(script=script, keep=keep, target=target))
