"""`bastion` command line entry point."""

from __future__ import annotations

import sys

import typer

from bastion.cli import certs, records, rules_cli, setup, targets
from bastion.errors import BastionError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="SSH bastion with command-level control for tool-using agents.",
)
setup.register(app)
app.add_typer(targets.app, name="targets")
app.add_typer(certs.cert_app, name="cert")
app.add_typer(certs.ca_app, name="ca")
app.add_typer(rules_cli.app, name="rules")
records.register(app)


def main() -> None:
    try:
        app(standalone_mode=False)
    except BastionError as exc:
        typer.echo(f"bastion: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("bastion: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click's own usage errors and anything unforeseen
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        typer.echo(f"bastion: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(70)
