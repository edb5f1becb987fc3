"""Digest commands: `comms digest run SLUG` composes a digest's issue from the calendar."""

from __future__ import annotations

from datetime import datetime

import click

from comms.core.errors import CommsError

from .common import State, _report, cli


@cli.group()
def digest() -> None:
    """Regional digests: issues composed from events, practices and deadlines
    (content/digests/<slug>.md)."""


@digest.command("run")
@click.argument("slug")
@click.option("--dry-run", is_flag=True, help="Print the composed issue instead of writing it.")
@click.option(
    "--date",
    "when",
    metavar="DATE",
    help="The run day (YYYY-MM-DD or DD.MM.YYYY; default: today, or reference_date if set).",
)
@click.pass_obj
def run(state: State, slug: str, dry_run: bool, when: str | None) -> None:
    """Compose content/issues/<date>-<slug>.md from the items in the digest's horizon.

    Items an earlier run of the digest showed unchanged are left out; changed ones (postponed,
    cancelled) come again. Nothing is written when there are fewer than min_items, nor over an
    existing issue file. The issue then goes through check, preview, approval and send like
    any other.
    """
    from comms.content.fields import parse_when
    from comms.content.site import read_site
    from comms.publish.digest_compose import run_digest

    config = state.config()
    try:
        parsed = parse_when(when, config.tz) if when else config.now().date()
    except ValueError as exc:
        raise CommsError(f"--date: {exc}") from None
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    site, errors = read_site(config)
    found = site.digests.get(slug)
    if found is None:
        own = [e for e in errors if e.path.parent.name == "digests" and e.path.stem == slug]
        if own:
            _report(own, config.root, strict=False)
            raise CommsError(f"digest '{slug}' has errors; nothing composed")
        known = ", ".join(sorted(site.digests)) or "none"
        raise CommsError(f"no digest '{slug}' in content/digests/ (known: {known})")
    result = run_digest(config, site, found, day, dry_run)
    composed = result.composition
    where = composed.path.relative_to(config.root).as_posix()
    if composed.text is None:
        click.echo(f"nothing composed for {day.isoformat()}: {composed.reason}", err=True)
        return
    if dry_run:
        click.echo(f"# {where} ({len(composed.items)} item(s); dry run, not written)", err=True)
        click.echo(composed.text, nl=False)
        return
    if result.existed:
        click.echo(f"{where} exists; left as it is", err=True)
        return
    click.echo(f"created {where} ({len(composed.items)} item(s))")
    click.echo("then: comms check, comms preview, comms approve, comms send", err=True)
