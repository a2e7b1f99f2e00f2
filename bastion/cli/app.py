"""`bastion` command line entry point."""

from __future__ import annotations

import sys

import typer

from bastion import installed_version
from bastion.cli import certs, mask_cli, records, requests_cli, rules_cli, setup, store_cli, targets
from bastion.errors import BastionError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no boxes, no `<bool>` after flags
    context_settings={"help_option_names": ["-h", "--help"]},
    help="SSH bastion with command-level control for tool-using agents.",
)


def _version(show: bool) -> None:
    if show:
        typer.echo(f"bastion {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """SSH bastion with command-level control for tool-using agents."""


setup.register(app)
app.add_typer(targets.app, name="targets")
app.add_typer(certs.cert_app, name="cert")
app.add_typer(certs.ca_app, name="ca")
app.command("host-key")(certs.host_key)
app.add_typer(rules_cli.app, name="rules")
app.add_typer(requests_cli.app, name="requests")
app.add_typer(store_cli.app, name="store")
app.command("approve")(requests_cli.approve)
app.command("deny")(requests_cli.deny)
records.register(app)
mask_cli.register(app)


def main() -> None:
    try:
        status = app(standalone_mode=False, prog_name="bastion")  # returns typer.Exit's code
        if isinstance(status, int) and status:
            sys.exit(status)
    except BastionError as exc:
        typer.echo(f"bastion: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("bastion: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:  # the machine said no (disk full, permissions): not a bug
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"bastion: error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except Exception as exc:  # click's own usage errors and anything unforeseen
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # a (typer-vendored) click exception
            show()
            sys.exit(code)
        if type(exc).__name__ == "Exit" and isinstance(code, int):
            sys.exit(code)
        typer.echo(f"bastion: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(70)
