"""init, serve and demo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, state_dir
from bastion.errors import NotInitialised, UsageError

config_app = typer.Typer(no_args_is_help=True, help="bastion.toml.")


@config_app.command("check")
def config_check(state_dir_path: Path | None = StateDirOption) -> None:
    """Validate bastion.toml and the policies it names; errors name the line."""
    from bastion.config import load_config
    from bastion.decide import Decider

    state = state_dir(state_dir_path)
    if not state.config_file.is_file():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    config = load_config(state.config_file)
    Decider.from_config(config, state.root)
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
    from bastion.login import plan_login, read_token

    if device:
        if token_file is not None or token_env is not None:
            raise UsageError("--device takes no --token-file or --token-env")
        if not issuer:
            raise UsageError("--device needs --issuer URL (the OIDC issuer to sign in with)")
    plan = plan_login(bastion, out.expanduser(), host_ca)  # before anyone signs in
    if device:
        assert issuer is not None
        token = device_login(issuer, client_id, say=lambda text: typer.echo(text, err=True))
    else:
        token = read_token(token_file, token_env)
    result = do_login(plan, token)
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


HostNameOption = typer.Option(
    [],
    "--host-name",
    envvar="BASTION_HOST_NAMES",
    help="A name agents reach the bastion by (repeatable; $BASTION_HOST_NAMES, space-separated);"
    " its host certificate lists it, with localhost and 127.0.0.1.",
    show_default=False,
)


def init(
    state_dir_path: Path | None = StateDirOption,
    listen: str | None = typer.Option(None, help="HOST:PORT written into a new bastion.toml."),
    host_name: list[str] = HostNameOption,
) -> None:
    """Create the state dir: config, database, recordings folder and CA keys."""
    from bastion.config import parse_listen
    from bastion.setup_state import initialise

    if listen:
        _usage_listen(parse_listen, listen, "--listen")
    state = state_dir(state_dir_path)
    created = initialise(state, listen=listen, host_names=host_name)
    if created:
        typer.echo(f"initialised {state.root}: created {', '.join(created)}")
    else:
        typer.echo(f"{state.root} already initialised; nothing changed")


def _usage_listen(parse, text: str, flag: str) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """A bad address on the command line is a usage error (2), not a config error."""
    from bastion.errors import ConfigError

    try:
        return parse(text)
    except ConfigError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def serve(
    state_dir_path: Path | None = StateDirOption,
    listen: str | None = typer.Option(None, help="HOST:PORT (default: server.listen)."),
    log_level: str = typer.Option(
        "info", envvar="BASTION_LOG_LEVEL", help="debug, info, warning or error."
    ),
    log_format: str = typer.Option(
        "text",
        envvar="BASTION_LOG_FORMAT",
        help="text, or json: one object per line (time, level, logger, event, ...).",
    ),
    host_name: list[str] = HostNameOption,
    metrics: str | None = typer.Option(
        None,
        envvar="BASTION_METRICS",
        help="HOST:PORT for /metrics, /healthz and /readyz (default: server.metrics; off).",
    ),
    init_first: bool = typer.Option(
        False, "--init", help="Initialise the state dir first if needed (containers)."
    ),
    node: str | None = typer.Option(None, help="This node's name (default: server.node)."),
    workers: int = typer.Option(
        1, min=1, max=64, help="Run N processes sharing the port, each a node NAME-wI."
    ),
    share: str = typer.Option("inherit", help="How workers share the port: inherit or reuseport."),
    reuse_port: bool = typer.Option(False, "--reuse-port", hidden=True),
    listen_fd: int | None = typer.Option(None, "--listen-fd", hidden=True),
) -> None:
    """Run the bastion until SIGTERM or Ctrl-C."""
    from bastion import logs
    from bastion.config import parse_listen, validate_host_name
    from bastion.server import open_bastion, run_bastion
    from bastion.setup_state import initialise

    logs.configure(log_level, log_format)
    if listen:
        _usage_listen(parse_listen, listen, "--listen")
    metrics_listen = _usage_listen(parse_listen, metrics, "--metrics") if metrics else None
    for name in host_name:
        validate_host_name(name)
    if init_first:
        initialise(state_dir(state_dir_path), listen=listen, host_names=host_name)
    if node is not None:
        from bastion.config import check_node_name

        check_node_name(node, Path("--node"))
    if workers > 1:
        if metrics_listen is not None or _configured_metrics(state_dir(state_dir_path)):
            raise UsageError("metrics with --workers: each worker would need its own port; use one")
        raise typer.Exit(
            _supervise(state_dir(state_dir_path), listen, node, workers, log_level, share)
        )
    sock = None
    if listen_fd is not None:
        import socket

        sock = socket.socket(fileno=listen_fd)
    bastion = open_bastion(
        state_dir(state_dir_path), node, host_names=host_name, metrics_listen=metrics_listen
    )
    try:
        asyncio.run(run_bastion(bastion, listen, sock=sock, reuse_port=reuse_port))
    except OSError as exc:
        from bastion.errors import BastionError

        raise BastionError(f"cannot listen: {exc.strerror or exc}") from None


def _configured_metrics(state) -> bool:  # type: ignore[no-untyped-def]
    from bastion.config import load_config

    return state.config_file.is_file() and load_config(state.config_file).server.metrics is not None


def _supervise(
    state, listen: str | None, node: str | None, workers: int, log_level: str, share: str
) -> int:
    from bastion.config import load_config
    from bastion.nodes import default_node_name
    from bastion.workers import run_workers

    config = load_config(state.config_file)
    address = listen or f"{config.server.listen_host}:{config.server.listen_port}"
    base = node or config.server.node or default_node_name()
    return run_workers(state.root, address, workers, base, log_level, share)


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
