"""Operating commands: `comms backup FILE` and `comms restore FILE`."""

from __future__ import annotations

from pathlib import Path

import click

from comms.db.backup import backup as backup_database
from comms.db.backup import restore as restore_database

from .common import State, _open_store, cli


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def backup(state: State, file: Path) -> None:
    """Copy the SQLite database to FILE while comms keeps running (SQLite's online backup).

    On PostgreSQL it says to use pg_dump instead and exits 1.
    """
    config = state.config()
    pages = backup_database(config.database_url, file)
    click.echo(f"backed up {config.database_url} to {file} ({pages} pages)")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def restore(state: State, file: Path) -> None:
    """Replace the SQLite database with the backup FILE, then migrate it to this version.

    Stop `comms serve` and every running send first. On PostgreSQL it says to use pg_restore
    instead and exits 1.
    """
    config = state.config()
    pages = restore_database(config.database_url, file)
    _open_store(config).close()  # an older backup is brought to the current schema
    click.echo(f"restored {config.database_url} from {file} ({pages} pages)")
