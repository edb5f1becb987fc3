"""`comms report ISSUE|audience`: the figures of one issue's send, or of the audience."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click

from .common import State, _json, _open_store, cli

#: The word that asks for the audience report instead of an issue's.
AUDIENCE = "audience"


@cli.command()
@click.argument("subject", metavar="ISSUE|audience")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Audience report: the first day counted (default: a year before --to).",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Audience report: the last day counted (default: today).",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Audience report: also write the monthly figures to this CSV file (counts only, no "
    "personal data).",
)
@click.option(
    "--charts",
    "charts_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the report's charts to this folder: SVG files and index.html, which shows "
    "each with its figures as a table.",
)
@click.pass_obj
def report(
    state: State,
    subject: str,
    as_json: bool,
    start: datetime | None,
    end: datetime | None,
    csv_file: Path | None,
    charts_dir: Path | None,
) -> None:
    """What an issue's send reached, or how the audience grew: counts only, no person.

    `comms report ISSUE`: recipients per edition, region and topic; delivered, deferred,
    failed, bounced (hard/soft), complaints, unsubscribes through the issue's links, the
    send's duration and rate, and the views of its archive page per day.

    `comms report audience`: sign-ups, confirmations, unsubscribes, bounces and erasures per
    month between --from and --to; subscribers per region, topic and language; the
    confirmation rate.
    """
    from comms.core.clock import now_utc
    from comms.reports.audience_report import audience_report
    from comms.reports.charts import audience_charts, issue_charts, write_charts
    from comms.reports.clicks import Clicks
    from comms.reports.issue_report import issue_report

    config = state.config()
    store = _open_store(config)
    try:
        if subject == AUDIENCE:
            last = end.date() if end else now_utc().date()
            first = start.date() if start else last - timedelta(days=364)
            if last < first:
                raise click.UsageError("--to lies before --from")
            try:
                audience = audience_report(store.engine, first, last)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None
            if csv_file is not None:
                audience.write_csv(csv_file)
            if charts_dir is not None:
                charts = audience_charts(config, audience)
                title = f"{config.settings.site.name}: {first.isoformat()} – {last.isoformat()}"
                write_charts(config, charts, charts_dir, title)
            if as_json:
                click.echo(_json(audience.to_json()))
            else:
                for line in audience.lines(config):
                    click.echo(line)
            return
        if start or end or csv_file:
            raise click.UsageError("--from, --to and --csv belong to `comms report audience`")
        found = issue_report(store.engine, subject, Clicks(config, store.engine, store.secret))
        if charts_dir is not None:
            write_charts(config, issue_charts(config, found), charts_dir, subject)
        if as_json:
            click.echo(_json(found.to_json()))
        else:
            for line in found.lines(config):
                click.echo(line)
    finally:
        store.close()
