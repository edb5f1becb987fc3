"""Operating commands: `comms backup FILE`, `comms restore FILE` and `comms worker`."""

from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import click

from .common import State, _open_store, _signals, _totals, cli
from .sending import progress_bar

#: The worker reports each round as log lines (timestamped; JSON with `[log] format`).
log = logging.getLogger("comms.worker")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def backup(state: State, file: Path) -> None:
    """Copy the SQLite database to FILE while comms keeps running (SQLite's online backup).

    On PostgreSQL it says to use pg_dump instead and exits 1.
    """
    from comms.core.logs import shown_url
    from comms.db.backup import backup as backup_database

    config = state.config()
    pages = backup_database(config.database_url, file)
    click.echo(f"backed up {shown_url(config.database_url)} to {file} ({pages} pages)")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def restore(state: State, file: Path) -> None:
    """Replace the SQLite database with the backup FILE, then migrate it to this version.

    Stop `comms serve`, `comms worker` and every running send first: while the scheduler's
    lease or a delivery's claim shows another comms process at work on the database, it
    refuses (exit 1, nothing changed). On PostgreSQL it says to use pg_restore instead and
    exits 1.
    """
    from comms.core.clock import now_utc
    from comms.core.logs import shown_url
    from comms.db.backup import restore as restore_database

    config = state.config()
    pages = restore_database(config.database_url, file, now_utc())
    # Said before the migration: should that fail (say, the key is missing), the data is back.
    click.echo(f"restored {shown_url(config.database_url)} from {file} ({pages} pages)")
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
    for all) and retries that came due. Waits out database outages (started during one, it
    waits for the database). Runs until SIGTERM or Ctrl+C, which finish the
    messages in flight, record them and hand the other claimed rows back; it then exits 0, or
    3 when rows it handed back wait for another worker or the retry pass.
    """
    from comms.alerts.notify import Alerter
    from comms.core import alarm
    from comms.core.shutdown import Shutdown
    from comms.db.outage import Stopped, patiently
    from comms.sending.campaign import SendPlan, retry_due
    from comms.sending.run import Progress

    config = state.config()
    shutdown = _signals(Shutdown())
    # Before the first wait: an outage the worker starts into reaches the office too.
    alarm.install(Alerter(config, None))
    # Migrate, and say so if a secret key had to be generated; started while the database is
    # away, the worker waits for it.
    patiently("worker", partial(_open_store, config), shutdown.event).close()
    log.info("worker: looking for due deliveries every %g s", interval)
    left: dict[str, int] = {}
    while not shutdown.requested:
        try:
            with ExitStack() as bar:
                # One bar at a time on a terminal (rich shows one live display): each campaign
                # closes the previous campaign's bar.
                def start(plan: SendPlan, bar: ExitStack = bar) -> Progress | None:
                    bar.close()
                    return progress_bar(bar, plan)

                reports = retry_due(config, stop=shutdown.event, on_start=start)
        except Stopped:
            break  # asked to stop while the database was away: nothing of ours is claimed
        for report in reports:
            note = f" (stopped: {report.stopped})" if report.stopped else ""
            slug, counts = report.campaign.slug, report.counts
            extra = {"campaign": slug, "counts": counts}
            level = logging.WARNING if report.stopped else logging.INFO
            log.log(level, "%s: %s%s", slug, _totals(counts), note, extra=extra)
            if report.interrupted:
                left[slug] = report.waiting
        if once:
            break
        shutdown.event.wait(interval)
    if shutdown.requested:
        handed = ", ".join(f"{n} of {slug}" for slug, n in left.items() if n)
        back = f"; handed back: {handed}" if handed else ""
        log.info("worker: stopped by %s%s", shutdown.signal, back)
        # 3 as for `comms send`: work remains for another worker or the retry pass.
        sys.exit(3 if any(left.values()) else 0)
