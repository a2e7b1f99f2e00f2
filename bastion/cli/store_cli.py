"""bastion store migrate: move a bastion's state to another store (SQLite -> PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, cli_node, state_store_url
from bastion.store import open_store
from bastion.store.copy import CopyReport, copy_store

app = typer.Typer(no_args_is_help=True, help="The state store (SQLite or PostgreSQL).")


@app.command("migrate")
def migrate(
    to: str = typer.Option(
        ..., "--to", help="The new store's URL: postgresql://... or sqlite:///..."
    ),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Copy everything into an empty store, check its audit chain there, say how to switch.

    Stop the bastion first: what it writes during the copy would not be copied.
    """
    report = asyncio.run(_copy(state_store_url(state_dir_path), to))
    for table, count in report.rows.items():
        if count:
            typer.echo(f"  {table}: {count} rows")
    typer.echo(f"copied; the audit chain verifies on the new store, head {report.head}")
    typer.echo(f'now set in bastion.toml:  [store] url = "{to}"')


async def _copy(source_url: str, target_url: str) -> CopyReport:
    async with open_store(source_url, node=cli_node()) as source:
        async with open_store(target_url, node=cli_node(), create=True) as target:
            return await copy_store(source, target)
