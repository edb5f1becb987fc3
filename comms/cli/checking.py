"""`comms check`, which prints the last check's report again while nothing it reads changed
(comms.publish.build_record's stamps), before it imports the checks or reads the site."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .common import State, _counts, _lines, cli

if TYPE_CHECKING:
    from comms.content.models import Site
    from comms.core.config import Config
    from comms.publish.check_cache import Report


@cli.command()
@click.option("--strict", is_flag=True, help="Treat warnings (unknown keys …) as errors.")
@click.option(
    "--links",
    is_flag=True,
    help="Also fetch the external links of ready issues and what they show (online; "
    "cached in var/links-cache.json); dead ones are warnings.",
)
@click.pass_obj
def check(state: State, strict: bool, links: bool) -> None:
    """Validate content and configuration; print every problem as PATH:LINE: message.

    Reports everything that `build`, `send` or the scheduler would refuse, drop or render
    wrongly. Exits 1 if there is any error (or any warning with --strict), 0 otherwise.
    """
    from comms.core.files import exposure_warnings
    from comms.publish import build_record
    from comms.publish.check_cache import keep_report, kept_report
    from comms.publish.state import ScratchState

    config = state.config(strict=strict)
    # What links fetch online can change at any time: such a check is never kept.
    stamps = (
        None if links else build_record.take_stamps(config, config.output_dir, publishing=False)
    )
    report = kept_report(config, stamps, strict) if stamps is not None else None
    if report is None:
        report, site = _check(config, strict, links)
        if stamps is not None and not stamps.racy:
            # Until the first instant at which the check's build could list other pages.
            until = build_record.until(config, site, ScratchState())
            keep_report(config, stamps, strict, report, until)
    for line in report.lines:
        click.echo(line)
    for warning in exposure_warnings(config):
        click.echo(warning, err=True)
    click.echo(report.summary, err=True)
    if report.failures:
        sys.exit(1)


def _check(config: Config, strict: bool, links: bool) -> tuple[Report, Site]:
    """Read the site and check it: the report and the site as read."""
    from comms.content.models import KINDS
    from comms.content.site import read_site
    from comms.publish.check_cache import Report
    from comms.publish.gate import check_problems

    site, errors = read_site(config)
    errors = [*errors, *check_problems(config, site)]
    if links:
        from comms.publish.external import dead_links

        errors.extend(dead_links(config, site))
    failures, warnings = _counts(errors, strict)
    counts = ", ".join(f"{len(site.by_kind(k))} {KINDS[k].folder}" for k in KINDS)
    summary = f"{failures} error(s), {warnings} warning(s); valid: {counts}"
    report = Report(_lines(errors, config.root), summary, failures)
    return report, site
