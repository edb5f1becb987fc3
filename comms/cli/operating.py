"""Operating commands: `comms backup FILE`, `comms restore FILE` and `comms worker`."""

from __future__ import annotations

import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from comms.alerts.notify import Alerter
from comms.core import alarm
from comms.db.backup import backup as backup_database
from comms.db.backup import restore as restore_database
from comms.sending.campaign import SendPlan, retry_due
from comms.sending.run import Progress

from .common import State, _open_store, _totals, cli
from .sending import progress_bar


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
    # Said before the migration: should that fail (say, the key is missing), the data is back.
    click.echo(f"restored {config.database_url} from {file} ({pages} pages)")
    _open_store(config).close()  # an older backup is brought to the current schema


@cli.command()
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds between looks for campaigns with due deliveries.",
)
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.pass_obj
def worker(state: State, interval: float, once: bool) -> None:
    """Send every campaign's due deliveries, on this host as on any other (extra workers).

    Joins campaigns that other processes are sending (each claims its own rows, one send rate
    for all) and retries that came due. Runs until SIGTERM or Ctrl+C, which finish the
    messages in flight and hand the other claimed rows back.
    """
    config = state.config()
    _open_store(config).close()  # migrate, and say so if a secret key had to be generated
    alarm.install(Alerter(config, None))  # database outages reach the office
    stop = threading.Event()

    def halt(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, halt)
    click.echo(f"worker: looking for due deliveries every {interval:g} s")
    try:
        while not stop.is_set():
            with ExitStack() as bar:
                # One bar at a time on a terminal (rich shows one live display): each campaign
                # closes the previous campaign's bar.
                def start(plan: SendPlan, bar: ExitStack = bar) -> Progress:
                    bar.close()
                    return progress_bar(bar, plan)

                reports = retry_due(config, stop=stop, on_start=start)
            for report in reports:
                note = f" (stopped: {report.stopped})" if report.stopped else ""
                click.echo(f"{report.campaign.slug}: {_totals(report.counts)}{note}")
            if once:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
