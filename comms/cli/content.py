"""Content commands: new, preview, refresh, list and the demo (`building`: build; `checking`:
check)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

import click

from comms import __version__
from comms.content.models import KINDS
from comms.core.errors import CommsError

from .common import (
    State,
    _json,
    _open_store,
    _publish,
    _report,
    _schedule_lines,
    _totals,
    _valid_site,
    _when,
    cli,
)

# What a command uses is imported when it runs (see comms.cli.common).
if TYPE_CHECKING:
    from comms.content.models import Issue, Site
    from comms.core.config import Config
    from comms.core.errors import ContentError
    from comms.publish.listing import Listed


@cli.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("title")
@click.option(
    "--date",
    "when",
    metavar="DATE",
    help="The event's day, the issue's date or the award's deadline (YYYY-MM-DD or DD.MM.YYYY; "
    "default: today).",
)
@click.pass_obj
def new(state: State, kind: str, title: str, when: str | None) -> None:
    """Create a content file from comms/templates/archetypes/ (never overwrites).

    Events are named YYYY-MM-DD-<title>.md, issues YYYY-MM-newsletter.md, practices
    <title>.md, awards <series>-YYYY.md (the series of an existing award the title starts with,
    as sonderpreis-2020.md; the year from the title, else from --date). Every line marked [[…]]
    must be replaced before `comms check` passes.
    """
    from comms.content.fields import parse_when
    from comms.content.site import read_site
    from comms.publish.archetypes import new_file, write_new

    config = state.config()
    today = config.now().date()
    try:
        parsed = parse_when(when, config.tz) if when else today
    except ValueError as exc:
        raise CommsError(f"--date: {exc}") from None
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    site, _ = read_site(config)
    made = new_file(config, site, kind, title, day)
    write_new(made)
    target = made.path
    click.echo(f"created {target.relative_to(config.root).as_posix()}")
    click.echo("replace every [[…]] line, then run `comms check`", err=True)


@cli.command()
@click.pass_obj
def demo(state: State) -> None:
    """Run the pipeline on the sample content with the embedded defaults and summarise it."""
    from comms.content.site import InvalidContent, load_valid_site
    from comms.publish.templating import translate
    from comms.sending.rules import READY

    config = state.config()
    invalid: InvalidContent | None = None
    try:
        site, problems = load_valid_site(config)
    except InvalidContent as exc:
        # The summary describes the valid rest; the demo stops before building.
        invalid, site, problems = exc, exc.site, exc.problems
    failures, warnings = _report(problems, config.root, strict=False)
    now = config.now()
    click.echo(f"comms {__version__} – {config.settings.site.name}")
    source = (
        f"reference date {now.date().isoformat()}" if config.settings.reference_date else "clock"
    )
    click.echo(f"Content in {config.content_dir} (now = {_when(now, config)}, from the {source})")
    for kind in KINDS.values():
        label = translate(config.settings.site.language, kind.plural)
        click.echo(f"  {len(site.by_kind(kind.name)):4d} {label}")
    click.echo(f"Check: {failures} error(s), {warnings} warning(s)")
    upcoming = site.upcoming_events(now)[:5]
    click.echo("Next events:" if upcoming else "Next events: none")
    for event in upcoming:
        place = event.location.city if event.location else "online"
        status = "" if event.status == "planned" else f" [{event.status}]"
        click.echo(f"  {_when(event.start, config)} – {event.title} ({place}){status}")
    sendable = [i for i in site.issues.values() if READY.reason(i) is None]
    scheduled = sorted(
        (i for i in sendable if i.send_at and i.send_at > now), key=lambda i: i.send_at or now
    )
    if scheduled:
        issue = scheduled[0]
        assert issue.send_at is not None
        click.echo(
            f"Next scheduled issue: #{issue.number} „{issue.subject}“ "
            f"on {_when(issue.send_at, config)} ({issue.slug})"
        )
    else:
        click.echo("Next scheduled issue: none")
    _echo_feed_urls(config)
    if invalid is not None:
        sys.exit(1)
    published = _publish(config, site)
    click.echo(f"Output: {config.output_dir} ({published.write.files} files)")
    ready = sorted(sendable, key=lambda i: i.date)
    if scheduled or ready:
        _demo_send(config, site, problems, scheduled[0] if scheduled else ready[-1])
    _demo_schedule(config, now)


def _demo_schedule(config: Config, now: datetime) -> None:
    """The demo's last part: what `comms serve` would schedule, as of the demo's "now"."""
    from comms.schedule.runner import overview

    store = _open_store(config)
    try:
        view = overview(config, store, now, live=False)
    finally:
        store.close()
    click.echo(f"Schedule as of {_when(now, config)} (`comms schedule` uses the clock):")
    for line in _schedule_lines(config, view):
        click.echo(f"  {line}")


def _demo_send(config: Config, site: Site, problems: list[ContentError], issue: Issue) -> None:
    """Import the sample subscribers and send them `issue` through the configured transport."""
    from comms.audience.subscriber_csv import Problems, read_csv
    from comms.db.approvals import Desk
    from comms.db.people import Consent
    from comms.sending.approval import approval_of, approve, current_version, short
    from comms.sending.campaign import clear, send_to_list
    from comms.sending.rules import Request
    from comms.sending.run import SendOptions

    sample = config.root / "samples" / "subscribers.csv"
    if not sample.is_file():
        click.echo(f"Sending: skipped ({sample} not found)")
        return
    store = _open_store(config)
    consent = Consent("import", "comms demo", channel="cli", note="Beispieldaten für die Demo")
    rows = read_csv(sample, config, Problems(sample.name))
    result, _ = store.import_subscribers(rows, consent, confirmed=True)
    click.echo(
        f"Subscribers: {result.added} sample subscriber(s) imported, {result.known} already there "
        f"({store.count_active()} active)"
    )
    version = current_version(config, site, issue)
    if config.settings.delivery.require_approval and version is not None:
        desk = Desk(store.engine)
        if approval_of(desk.approvals(issue.slug), version.digest) is None:
            approve(desk, issue, version, "comms demo")
        click.echo(
            f"Approved: version {short(version.digest)} of {issue.slug} by „comms demo“ "
            "(delivery.require_approval is on; an editor runs `comms approve ISSUE`)"
        )
    # The demo shows what the scheduler does: its next scheduled issue, as of the reference
    # date still to come, is sent as the scheduler sends it when its send_at comes.
    cleared = clear(config, store, site, problems, Request.when_due(issue, config.now()))
    report = send_to_list(config, store, cleared, SendOptions.of(config.settings.delivery))
    label = f"#{issue.number} „{issue.subject}“ ({issue.slug})"
    sent = report.done_now.get("sent", 0)
    if not report.done_now:
        click.echo(f"Newsletter {label}: nothing new to send ({_totals(report.counts)})")
    else:
        click.echo(f"Newsletter {label}: sent {sent} now via {_where(config)}")
        click.echo(f"  {_totals(report.counts)}")


def _where(config: Config) -> str:
    """The transport URL without credentials."""
    from comms.core.transport_url import without_credentials

    return without_credentials(config.transport_url)


@cli.command()
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.pass_obj
def preview(state: State, port: int) -> None:
    """Serve the archive and every issue's e-mail (600 and 375 px) with rebuild on change."""
    import signal

    from comms.core.database_url import database_exists
    from comms.web.preview import Preview

    config = state.config()
    # Leave through the `with` on SIGTERM too, so the temporary output folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The recipient counts come from the database, if there is one; the preview creates none.
    store = _open_store(config) if database_exists(config.database_url) else None
    count = None if store is None else store.ledger.count_recipients
    try:
        with Preview(config, count) as server:
            click.echo(f"Preview: http://127.0.0.1:{port}/_preview/ (Ctrl+C stops)")
            if server.error:
                click.echo(server.error, err=True)
            server.serve(port)
    finally:
        if store is not None:
            store.close()


def _echo_feed_urls(config: Config) -> None:
    """The demo's list of feed and calendar addresses."""
    from comms.content import urls
    from comms.content.urls import Urls

    site = Urls(config)
    click.echo("Feeds (RSS, Atom, JSON Feed):")
    for kind in (None, "event", "issue", "practice", "award"):
        folder = urls.feed_folder(kind)
        click.echo("  " + "  ".join(site.feed(folder, fmt) for fmt in urls.FEED_NAMES))
    region = urls.feed_path(urls.feed_folder("event", "<region>"), "rss")
    click.echo(f"  per region: {site.absolute(region)} (atom.xml, feed.json)")
    click.echo("Calendars:")
    click.echo(f"  {urls.webcal(site.calendar())}")
    click.echo(f"  per region: {urls.webcal(site.calendar('<region>'))}")
    click.echo(f"  per event: {urls.webcal(site.absolute(urls.event_calendar_path('<slug>')))}")


@cli.command()
@click.pass_obj
def refresh(state: State) -> None:
    """Rebuild the output, write only files whose bytes changed, notify WebSub hubs.

    Each configured hub (feeds.hubs) gets one `hub.mode=publish` POST per changed feed;
    failed notifications are retried by the next refresh. Exits 1 on content errors (nothing
    is written) or when a hub did not accept a notification (the files are written).
    """
    config = state.config()
    site, _ = _valid_site(config)
    report = _publish(config, site, tell_hubs=True)
    write = report.write
    click.echo(
        f"{len(write.written)} file(s) written, {len(write.unchanged)} unchanged, "
        f"{len(write.removed)} removed"
    )
    for url in report.changed_feeds:
        click.echo(f"changed feed: {url}")
    for ping in report.pings:
        if ping.ok:
            click.echo(f"notified {ping.hub}: {ping.topic}")
        else:
            click.echo(f"error: hub {ping.hub} did not take {ping.topic} ({ping.detail})", err=True)
    if report.failed:
        sys.exit(1)


def _problem_count(listed: Listed) -> str:
    parts = [f"{listed.errors} error(s)"] if listed.errors else []
    parts += [f"{listed.warnings} warning(s)"] if listed.warnings else []
    return ", ".join(parts) or "ok"


@cli.command("list")
@click.argument("kind", type=click.Choice(sorted(KINDS)), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of items).")
@click.pass_obj
def list_items_command(state: State, kind: str | None, as_json: bool) -> None:
    """List the slugs of every item (or of KIND) with status, date and problems.

    One line per content file, newest first within each kind: slug, status (draft/ready,
    planned/cancelled/postponed, `invalid` for a file with errors), its main date (an event's
    start, an issue's send_at or date, an award's deadline), how many errors and warnings
    `comms check` reports for it and its translations, the translations' languages and the
    title. The slug is what an issue names under `events`, `practices` and `award`.
    """
    from comms.publish.listing import list_items

    config = state.config()
    found = list_items(config, kind)
    if as_json:
        click.echo(_json([asdict(listed) for listed in found]))
        return
    for name in [kind] if kind else list(KINDS):
        rows = [listed for listed in found if listed.kind == name]
        click.echo(f"{KINDS[name].folder} ({len(rows)})")
        width = max((len(listed.slug) for listed in rows), default=0)
        status = max((len(listed.status) for listed in rows), default=0)
        for listed in rows:
            when = listed.when.replace("T", " ")[:16]
            languages = f" [{', '.join(listed.translations)}]" if listed.translations else ""
            click.echo(
                f"  {listed.slug:<{width}}  {listed.status:<{status}}  {when:<16}  "
                f"{_problem_count(listed)}{languages}  {listed.title}".rstrip()
            )
