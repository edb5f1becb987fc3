"""The command line: the only place that prints or turns a CommsError into an exit code."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeRemainingColumn,
)
from rich.text import Text

from . import __version__, feeds, publish
from .build import WriteReport, collect, write_output
from .config import Config, load_config
from .content import KINDS, Issue, Site
from .errors import CommsError, ConfigError, ContentError
from .ledger import Campaign
from .message import MessageFactory
from .outbox import SendOptions, issue_parts, opener_for, prepare
from .outbox import send as outbox_send
from .quality import check_issues
from .reader import SLUG_RE, read_content
from .roster import Problems, check_person, read_csv, write_export
from .store import Consent, Store, normalise_address, open_store
from .tables import DELIVERY_STATES
from .timetable import SEND_PREFIX, Held, held_list
from .transports import open_transport

if TYPE_CHECKING:
    from .scheduler import Overview, SchedulerHandle

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
F = TypeVar("F", bound=Callable[..., Any])


class State:
    """What the group options leave for the commands."""

    def __init__(self, config_path: Path | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug

    def config(self, strict: bool = False, **overrides: Any) -> Config:
        """Load the configuration, printing its warnings."""
        config = load_config(self.config_path, overrides=overrides, strict=strict)
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
        return config


def _report(errors: list[ContentError], root: Path, strict: bool) -> tuple[int, int]:
    """Print content problems as PATH:LINE: message; return (errors, warnings)."""
    ordered = sorted(errors, key=lambda e: (str(e.path), e.line, e.message))
    for error in ordered:
        click.echo(error.format(root))
    failures = sum(1 for e in errors if not e.warning or strict)
    return failures, len(errors) - failures


def load_site(config: Config) -> tuple[Site, list[ContentError]]:
    """Read the configured content folder."""
    settings = config.settings
    return read_content(config.content_dir, config.tz, settings.regions, settings.topics)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Configuration file (default: ./comms.toml; built-in defaults if there is none).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="comms")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """comms: newsletter, web archive, feeds and calendars from Markdown content."""
    ctx.obj = State(config_path, debug)


@cli.command()
@click.option("--strict", is_flag=True, help="Treat warnings (unknown keys …) as errors.")
@click.pass_obj
def check(state: State, strict: bool) -> None:
    """Validate content and configuration; print every problem as PATH:LINE: message.

    Exits 1 if there is any error (or any warning with --strict), 0 otherwise.
    """
    config = state.config(strict=strict)
    site, errors = load_site(config)
    errors = [*errors, *check_issues(config, site)]
    failures, warnings = _report(errors, config.root, strict)
    counts = ", ".join(f"{len(site.by_kind(k))} {KINDS[k].folder}" for k in KINDS)
    click.echo(f"{failures} error(s), {warnings} warning(s); valid: {counts}", err=True)
    if failures:
        sys.exit(1)


def slugify(title: str) -> str:
    """A file-name slug from a German title: umlauts transliterated, ASCII, hyphens."""
    text = title.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "-".join(words)[:80].strip("-")


def _yaml_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@cli.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("title")
@click.pass_obj
def new(state: State, kind: str, title: str) -> None:
    """Create content/<kind>/<slug>.md from templates/archetypes/ (never overwrites)."""
    config = state.config()
    slug = slugify(title)
    if not SLUG_RE.match(slug):
        raise CommsError(f"cannot make a file name from the title '{title}'")
    target = config.content_dir / KINDS[kind].folder / f"{slug}.md"
    if target.exists():
        raise CommsError(f"{target.relative_to(config.root)} already exists; not overwritten")
    site, _ = load_site(config)
    today = config.now().date()
    env = Environment(loader=FileSystemLoader(TEMPLATES / "archetypes"), keep_trailing_newline=True)
    text = env.get_template(f"{kind}.md").render(
        title=_yaml_string(" ".join(title.split())),
        today=today.isoformat(),
        year=today.year,
        number=max((i.number for i in site.issues.values()), default=0) + 1,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("x", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"created {target.relative_to(config.root).as_posix()}")


def _when(value: date, config: Config) -> str:
    locale = config.settings.site.language
    if hasattr(value, "hour"):
        return format_datetime(
            value, "EEE, d. MMMM y, HH:mm 'Uhr'", tzinfo=config.tz, locale=locale
        )
    return format_date(value, "EEE, d. MMMM y", locale=locale)


@cli.command()
@click.pass_obj
def demo(state: State) -> None:
    """Run the pipeline on the sample content with the embedded defaults and summarise it."""
    config = state.config()
    site, errors = load_site(config)
    failures, warnings = _report(errors, config.root, strict=False)
    now = config.now()
    click.echo(f"comms {__version__} – {config.settings.site.name}")
    source = (
        f"reference date {now.date().isoformat()}" if config.settings.reference_date else "clock"
    )
    click.echo(f"Content in {config.content_dir} (now = {_when(now, config)}, from the {source})")
    for kind in KINDS.values():
        click.echo(f"  {len(site.by_kind(kind.name)):4d} {kind.plural}")
    click.echo(f"Check: {failures} error(s), {warnings} warning(s)")
    upcoming = site.upcoming_events(now)[:5]
    click.echo("Next events:" if upcoming else "Next events: none")
    for event in upcoming:
        place = event.location.city if event.location else "online"
        status = "" if event.status == "planned" else f" [{event.status}]"
        click.echo(f"  {_when(event.start, config)} – {event.title} ({place}){status}")
    scheduled = sorted(
        (i for i in site.issues.values() if i.status == "ready" and i.send_at and i.send_at > now),
        key=lambda i: i.send_at or now,
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
    if failures:
        sys.exit(1)
    files, _ = _build(config, site, config.output_dir)
    click.echo(f"Output: {config.output_dir} ({files} files)")
    ready = sorted((i for i in site.issues.values() if i.status == "ready"), key=lambda i: i.date)
    if scheduled or ready:
        _demo_send(config, site, scheduled[0] if scheduled else ready[-1])
    _demo_schedule(config, now)


def _demo_schedule(config: Config, now: datetime) -> None:
    """The demo's last part: what `comms serve` would schedule, as of the demo's "now"."""
    from .scheduler import overview

    store = _open_store(config)
    try:
        view = overview(config, store, now, live=False)
    finally:
        store.close()
    click.echo(f"Schedule as of {_when(now, config)} (`comms schedule` uses the clock):")
    for line in _schedule_lines(config, view):
        click.echo(f"  {line}")


def _demo_send(config: Config, site: Site, issue: Issue) -> None:
    """Import the sample subscribers and send them `issue` through the configured transport."""
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
    _, factory, fingerprint = issue_parts(config, store, site, issue)
    campaign, _ = prepare(store, issue.slug, fingerprint, issue.topics, issue.regions)
    options = SendOptions.from_config(config)
    report = outbox_send(store, campaign, factory.build, opener_for(config), options)
    label = f"#{issue.number} „{issue.subject}“ ({issue.slug})"
    sent = report.done_now.get("sent", 0)
    if not report.done_now:
        click.echo(f"Newsletter {label}: nothing new to send ({_totals(report.counts)})")
    else:
        click.echo(f"Newsletter {label}: sent {sent} now via {_where(config)}")
        click.echo(f"  {_totals(report.counts)}")


def _where(config: Config) -> str:
    """The transport URL without credentials."""
    url = config.transport_url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _build(config: Config, site: Site, out_dir: Path) -> tuple[int, WriteReport]:
    """Collect every producer's files in memory, then write them; (file count, report)."""
    files = collect(config, site)
    return len(files), write_output(out_dir, files)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: output_dir from the configuration).",
)
@click.pass_obj
def build(state: State, out_dir: Path | None) -> None:
    """Write the web archive, feeds, calendars and e-mail previews into the output folder.

    With content errors nothing is written and the exit code is 1.
    """
    config = state.config()
    site, errors = load_site(config)
    failures, _ = _report(errors, config.root, strict=False)
    if failures:
        click.echo(f"{failures} error(s); nothing written", err=True)
        sys.exit(1)
    target = (out_dir or config.output_dir).resolve()
    _, report = _build(config, site, target)
    click.echo(
        f"Built {target}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed"
    )


@cli.command()
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.pass_obj
def preview(state: State, port: int) -> None:
    """Serve the archive and every issue's e-mail (600 and 375 px) with rebuild on change."""
    import signal

    from .preview import Preview

    config = state.config()
    # Leave through the `with` on SIGTERM too, so the temporary output folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Preview(config) as server:
        click.echo(f"Preview: http://127.0.0.1:{port}/_preview/ (Ctrl+C stops)")
        if server.error:
            click.echo(server.error, err=True)
        server.serve(port)


def _json(data: Any) -> str:
    """JSON for the console: dates as ISO 8601, German text unescaped."""

    def default(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(type(value).__name__)

    return json.dumps(data, ensure_ascii=False, indent=2, default=default)


def _open_store(config: Config) -> Store:
    """Open the database, saying so when a secret key had to be generated."""
    store = open_store(config)
    if store.generated_secret:
        click.echo(
            "warning: COMMS_SECRET_KEY is not set; generated a secret key and stored it in the "
            "database (set COMMS_SECRET_KEY in production, see README)",
            err=True,
        )
    return store


def _consent_options(confirmed: bool, note: str | None) -> None:
    if confirmed and not (note or "").strip():
        raise click.UsageError(
            "--confirmed needs --consent-note TEXT: how and when these people consented"
        )


@cli.group()
def subscribers() -> None:
    """Manage subscribers: add, import, export, show (GDPR export), remove (erasure)."""


@subscribers.command("add")
@click.argument("address")
@click.option("--name", help="The person's name.")
@click.option("--language", help="de or en (default: site.language).")
@click.option("--topic", "topics", multiple=True, help="A topic slug (repeatable).")
@click.option("--region", "regions", multiple=True, help="A region slug (repeatable).")
@click.option("--confirmed", is_flag=True, help="The person has consented: add as active.")
@click.option("--consent-note", help="How the consent was given (required with --confirmed).")
@click.pass_obj
def subscribers_add(
    state: State,
    address: str,
    name: str | None,
    language: str | None,
    topics: tuple[str, ...],
    regions: tuple[str, ...],
    confirmed: bool,
    consent_note: str | None,
) -> None:
    """Add one person; without --confirmed they stay pending until they confirm."""
    _consent_options(confirmed, consent_note)
    config = state.config()
    try:
        person = check_person(config, address, name, language, topics, regions)
    except ValueError as exc:
        raise CommsError(str(exc)) from None
    store = _open_store(config)
    if confirmed:
        event = Consent("import", "comms subscribers add", channel="cli", note=consent_note)
        store.add_confirmed(person, event)
        click.echo(f"added {person.email} as active (consent: {consent_note})")
    else:
        store.add_pending(person, Consent("request", "comms subscribers add", channel="cli"))
        click.echo(
            f"added {person.email} as pending: pending addresses get no newsletter; "
            "the confirmation mail (double opt-in) is not built yet"
        )


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--confirmed", is_flag=True, help="Everyone in the file has consented: active.")
@click.option("--consent-note", help="How the consent was given (required with --confirmed).")
@click.pass_obj
def subscribers_import(state: State, file: Path, confirmed: bool, consent_note: str | None) -> None:
    """Import a CSV file (header: email, optional name, language, topics, regions).

    Bad rows are reported as FILE:LINE: message and skipped; the good ones are imported.
    Exits 1 when any row was bad.
    """
    _consent_options(confirmed, consent_note)
    config = state.config()
    store = _open_store(config)
    problems = Problems(file.as_posix())
    if confirmed:
        event = Consent("import", f"import {file.name}", channel="cli", note=consent_note)
    else:
        event = Consent("request", f"import {file.name}", channel="cli", note=consent_note)
    rows = read_csv(file, config, problems)
    result, notes = store.import_subscribers(rows, event, confirmed)
    for problem in problems.format():
        click.echo(problem)
    for number, note in notes:
        click.echo(f"{file.as_posix()}:{number}: {note}")
    bad = sum(1 for _, message in problems.lines if not message.startswith("warning:"))
    state_word = "active" if confirmed else "pending"
    click.echo(
        f"imported {result.added} ({state_word}); {result.known} already known, "
        f"{result.suppressed} suppressed, {bad} bad row(s) skipped",
        err=True,
    )
    if bad:
        sys.exit(1)


@subscribers.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
@click.pass_obj
def subscribers_export(state: State, fmt: str, output: Path | None) -> None:
    """Write every subscriber as CSV or JSON."""
    store = _open_store(state.config())
    if output is None:
        write_export(store.iter_subscribers(), sys.stdout, fmt)
        sys.stdout.flush()
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        count = write_export(store.iter_subscribers(), handle, fmt)
    click.echo(f"exported {count} subscriber(s) to {output}", err=True)


def _address(text: str) -> str:
    try:
        return normalise_address(text)
    except ValueError as exc:
        raise CommsError(f"invalid e-mail address '{text}': {exc}") from None


@subscribers.command("show")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.pass_obj
def subscribers_show(state: State, address: str, as_json: bool) -> None:
    """Print everything stored about one person (GDPR Art. 15)."""
    email = _address(address)
    report = _open_store(state.config()).report(email)
    if report is None:
        raise CommsError(f"nothing stored about {email}")
    if as_json:
        click.echo(_json(report))
        return
    for key in ("email", "uid", "name", "language", "status", "topics", "regions"):
        if key in report:
            value = report[key]
            shown = " ".join(value) if isinstance(value, tuple) else value
            click.echo(f"{key + ':':<13} {shown if shown not in (None, '') else '–'}")
    for key in ("created_at", "confirmed_at", "unsubscribed_at"):
        if report.get(key):
            click.echo(f"{key + ':':<13} {report[key].isoformat()}")
    click.echo(f"{'suppressed:':<13} {report['suppressed'] or 'no'}")
    click.echo(f"consent ledger ({len(report['consent'])}):")
    for row in report["consent"]:
        extra = ", ".join(
            f"{k} {row[k]}"
            for k in ("channel", "ip", "user_agent", "consent_version", "note")
            if row[k]
        )
        click.echo(f"  {row['at'].isoformat()} {row['action']} via {row['source']}; {extra}")
    click.echo(f"deliveries ({len(report['deliveries'])}):")
    for row in report["deliveries"]:
        click.echo(f"  {row['slug']}: {row['status']} after {row['attempts']} attempt(s)")


@subscribers.command("remove")
@click.argument("address")
@click.pass_obj
def subscribers_remove(state: State, address: str) -> None:
    """Erase one person (GDPR Art. 17); only a suppression hash stays, so they get no mail."""
    email = _address(address)
    removed = _open_store(state.config()).erase(email)
    if not removed["subscriber"]:
        click.echo(f"no subscriber {email}; added the address's hash to the suppression list")
        return
    click.echo(
        f"erased {email}: profile, {removed['consent']} consent record(s), personal link of "
        f"{removed['deliveries']} delivery record(s); kept: the suppression hash, so the "
        "address is never mailed or imported again"
    )


def _campaign_json(store: Store, campaign: Campaign) -> dict[str, Any]:
    counts = store.counts(campaign.id)
    return {
        "issue": campaign.slug,
        "status": campaign.status,
        "recipients": campaign.recipients,
        "counts": {status: counts.get(status, 0) for status in DELIVERY_STATES},
        "started": campaign.created_at,
        "updated": campaign.updated_at,
    }


def _held_json(held: Held) -> dict[str, Any]:
    """A held send in `comms status --json`: no campaign yet, so every count is 0."""
    return {
        "issue": held.slug,
        "status": "held",
        "recipients": 0,
        "counts": dict.fromkeys(DELIVERY_STATES, 0),
        "due_at": held.due_at,
        "held_at": held.held_at,
    }


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.option("--errors", "limit", default=10, show_default=True, help="How many recent errors.")
@click.pass_obj
def status(state: State, issue: str | None, as_json: bool, limit: int) -> None:
    """Delivery counts per status and the latest errors of one issue, or every campaign."""
    config = state.config()
    store = _open_store(config)
    held = {h.slug: h for h in held_list(store.engine)}
    if issue is None:
        rows = [_campaign_json(store, c) for c in store.campaigns()]
        if as_json:
            click.echo(_json(rows + [_held_json(h) for h in held.values()]))
            return
        if not rows and not held:
            click.echo("no campaigns yet")
        for row in rows:
            counts = ", ".join(f"{n} {s}" for s, n in row["counts"].items() if n)
            click.echo(
                f"{row['issue']}: {row['status']}, {row['recipients']} recipient(s); {counts}"
            )
        for h in held.values():
            click.echo(_held_line(config, h.slug, h.due_at))
        return
    campaign = store.campaign(issue)
    if campaign is None and issue in held:
        if as_json:
            click.echo(_json(_held_json(held[issue])))
        else:
            click.echo(_held_line(config, issue, held[issue].due_at))
        return
    if campaign is None:
        raise CommsError(f"issue '{issue}' has not been sent (no campaign)")
    data = _campaign_json(store, campaign)
    data["errors"] = store.recent_errors(campaign.id, limit)
    data["next_attempt"] = store.next_attempt(campaign.id)
    if as_json:
        click.echo(_json(data))
        return
    click.echo(f"{issue}: {data['status']}, {data['recipients']} recipient(s)")
    for name, count in data["counts"].items():
        click.echo(f"  {name:<10} {count:>7}")
    if data["next_attempt"]:
        click.echo(f"next retry: {_when(data['next_attempt'], config)}")
    if data["errors"]:
        click.echo("recent errors:")
    for row in data["errors"]:
        who = row["email"] or "(erased)"
        tries = f"{row['attempts']} attempt(s)"
        click.echo(f"  {who}: {row['status']} after {tries}: {row['last_error']}")


class _Rate(ProgressColumn):
    """Messages per second of a progress task."""

    def render(self, task: Task) -> Text:
        """The task's current speed."""
        return Text(f"{task.speed or 0:,.0f} msg/s")


def _find_issue(config: Config, site: Site, errors: list[ContentError], slug: str) -> Issue:
    issue = site.issues.get(slug)
    if issue is not None:
        return issue
    own = [e for e in errors if e.path.stem == slug]
    for error in own:
        click.echo(error.format(config.root), err=True)
    if own:
        raise CommsError(f"issue '{slug}' has errors; fix them first")
    known = ", ".join(sorted(site.issues)) or "none"
    raise CommsError(f"no issue '{slug}' in {config.content_dir} (known: {known})")


def _pending(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in ("queued", "ambiguous", "sending"))


def _totals(counts: dict[str, int]) -> str:
    shown = [f"{counts.get(s, 0)} {s}" for s in ("sent", "failed", "skipped")]
    return ", ".join(shown + [f"{_pending(counts)} waiting"])


def _dry_run(store: Store, issue: Issue, options: SendOptions) -> None:
    campaign = store.campaign(issue.slug)
    if campaign is None:
        todo = recipients = store.count_recipients(issue.topics, issue.regions)
    else:
        recipients = campaign.recipients
        todo = _pending(store.counts(campaign.id))
    batches = -(-todo // options.claim_size)
    click.echo(f"Plan for #{issue.number} „{issue.subject}“ ({issue.slug}), nothing is sent:")
    click.echo(f"  recipients: {recipients}" + (" (campaign started)" if campaign else ""))
    click.echo(f"  to send now: {todo} in {batches} batch(es) of up to {options.claim_size}")
    click.echo(f"  connections: {options.concurrency}")
    if options.rate > 0:
        seconds = round(todo / options.rate)
        click.echo(
            f"  estimated time: {seconds // 60} min {seconds % 60} s at {options.rate:g} msg/s"
        )
    else:
        click.echo("  estimated time: as fast as the server accepts (no rate limit)")


def _send_proofs(config: Config, factory: MessageFactory, addresses: tuple[str, ...]) -> None:
    emails = [_address(a) for a in addresses]
    transport = open_transport(config.transport_url, config)
    try:
        for email in emails:
            message = factory.build_proof(email)
            transport.send(message.envelope_from, message.recipient, message.data, message.key)
            click.echo(f"proof sent to {email} (outside the list; the ledger is unchanged)")
    finally:
        transport.close()


@cli.command()
@click.argument("issue_slug", metavar="ISSUE")
@click.option("--transport", "transport_url", help="Transport URL (default: `transport`).")
@click.option("--to", "proofs", multiple=True, help="Send a proof to ADDR only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the plan; send nothing.")
@click.option("--concurrency", type=click.IntRange(1, 64), help="Connections (threads).")
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second, 0 = unlimited.")
@click.option("--force", is_flag=True, help="Go on although the issue changed after the start.")
@click.pass_obj
def send(
    state: State,
    issue_slug: str,
    transport_url: str | None,
    proofs: tuple[str, ...],
    dry_run: bool,
    concurrency: int | None,
    rate: float | None,
    force: bool,
) -> None:
    """Send an issue to its subscribers; run again to resume or retry.

    Exits 0 when every delivery is final (sent, or failed for good), 3 when some wait for a
    later retry, 1 when the campaign was stopped.
    """
    overrides: dict[str, Any] = {"transport": transport_url} if transport_url else {}
    config = state.config(**overrides)
    site, errors = load_site(config)
    issue = _find_issue(config, site, errors, issue_slug)
    store = _open_store(config)
    options = SendOptions.from_config(config, concurrency, rate)
    if not proofs and issue.status != "ready":
        raise CommsError(
            f"issue '{issue.slug}' is a draft; set `status: ready` to send it "
            "(proofs with --to work for drafts)"
        )
    if dry_run:
        _dry_run(store, issue, options)
        return
    _, factory, fingerprint = issue_parts(config, store, site, issue)
    if proofs:
        _send_proofs(config, factory, proofs)
        return
    opener = opener_for(config)
    campaign, _ = prepare(store, issue.slug, fingerprint, issue.topics, issue.regions, force)
    todo = _pending(store.counts(campaign.id))
    if not todo:
        click.echo(
            f"nothing to send: every delivery of {issue.slug} is final "
            f"({_totals(store.counts(campaign.id))})"
        )
        return
    click.echo(
        f"Sending #{issue.number} „{issue.subject}“ ({issue.slug}): {campaign.recipients} "
        f"recipient(s), {todo} to send over {options.concurrency} connection(s)"
        + (f" at up to {options.rate:g} msg/s" if options.rate else "")
    )
    console = Console(stderr=True)
    with Progress(
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("send", total=todo)
        report = outbox_send(
            store,
            campaign,
            factory.build,
            opener,
            options,
            lambda done: bar.update(task, completed=done),
        )
    if report.resumed:
        click.echo(f"took over {report.resumed} delivery(ies) an interrupted run left behind")
    click.echo(f"{issue.slug}: {_totals(report.counts)}")
    if report.stopped:
        raise CommsError(
            f"campaign stopped: {report.stopped}; {report.waiting} deliveries stay queued; "
            f"fix the cause and run `comms send {issue.slug}` again"
        )
    if report.next_attempt is not None:
        click.echo(
            f"{report.waiting} delivery(ies) wait for a retry, the next at "
            f"{_when(report.next_attempt, config)}; run `comms send {issue.slug}` again then"
        )
    sys.exit(report.exit_code)


def _echo_feed_urls(config: Config) -> None:
    """The demo's list of feed and calendar addresses."""
    click.echo("Feeds (RSS, Atom, JSON Feed):")
    folders = ["", "events/", "issues/", "practices/", "awards/"]
    for folder in folders:
        urls = "  ".join(config.url(folder + name) for name in feeds.FEED_FILES)
        click.echo(f"  {urls}")
    click.echo(
        f"  per region: {config.url('events/region/<region>/feed.xml')} (atom.xml, feed.json)"
    )
    click.echo("Calendars:")
    click.echo(f"  {feeds.webcal(config.url('events.ics'))}")
    click.echo(f"  per region: {feeds.webcal(config.url('events-<region>.ics'))}")
    click.echo(f"  per event: {feeds.webcal(config.url('events/<slug>.ics'))}")


@cli.command()
@click.pass_obj
def refresh(state: State) -> None:
    """Rebuild the output, write only files whose bytes changed, notify WebSub hubs.

    Each configured hub (feeds.hubs) gets one `hub.mode=publish` POST per changed feed;
    failed notifications are retried by the next refresh. Exits 1 on content errors (nothing
    is written) or when a hub did not accept a notification (the files are written).
    """
    config = state.config()
    site, errors = load_site(config)
    failures, warnings = _report(errors, config.root, strict=False)
    if failures:
        click.echo(f"{failures} error(s), {warnings} warning(s); nothing written", err=True)
        sys.exit(1)
    report = publish.refresh(config, site)
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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Serve the web endpoints only; run no scheduled sends, refresh, retries or purges.",
)
@click.option(
    "--trusted-proxy",
    metavar="ADDR",
    help="Address of a reverse proxy whose X-Forwarded-For/-Proto headers are believed "
    "(the rate limit and the consent ledger then see the visitor's address).",
)
@click.pass_obj
def serve(
    state: State, host: str, port: int, no_scheduler: bool, trusted_proxy: str | None
) -> None:
    """Serve the subscriber pages, /healthz and the output folder (waitress).

    Sign-up (/subscribe), confirmation (/confirm/…), unsubscribe with RFC 8058 one-click
    (/unsubscribe/…), preferences (/preferences/…); everything else comes from the output
    folder with ETags. Ctrl+C or SIGTERM stops after the queued confirmation mails went out.

    Unless --no-scheduler is given, the same process runs the scheduler (see `comms
    schedule`); a second `comms serve` on the same database serves the web endpoints only.
    On SIGTERM a running send finishes the messages in flight and hands the rest back.
    """
    import signal

    from waitress.server import create_server

    from .subscriptions import Mailer, Subscriptions
    from .web import create_app

    config = state.config()
    store = _open_store(config)
    mailer = Mailer(config)
    app = create_app(config.output_dir, config, Subscriptions(config, store, mailer))
    proxy: dict[str, Any] = {}
    if trusted_proxy:
        proxy = {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "clear_untrusted_proxy_headers": True,
        }
    server = create_server(app, host=host, port=port, threads=8, ident="comms", **proxy)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    address = f"[{host}]" if ":" in host else host
    handle: SchedulerHandle | None = None
    signal.signal(signal.SIGTERM, stop)
    try:  # everything after the handler: a SIGTERM at any point stops cleanly
        handle, mode = (None, "web only") if no_scheduler else _start_scheduler(config, store)
        click.echo(f"Serving on http://{address}:{server.effective_port}/ ({mode}; Ctrl+C stops)")
        _build_before_serving(config)
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if handle is not None:
            handle.shutdown()
        mailer.close()
        store.close()


def _start_scheduler(config: Config, store: Store) -> tuple[SchedulerHandle | None, str]:
    """Start the scheduler unless another process runs one on this database (R5)."""
    import logging

    from .lease import holder
    from .scheduler import start_scheduler

    # The scheduler reports through logging (missed and failed jobs as errors) on stderr.
    log = logging.getLogger("comms")
    if not log.handlers:
        out = logging.StreamHandler()
        out.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(out)
        log.setLevel(logging.INFO)
    handle = start_scheduler(config, store)
    if handle is not None:
        return handle, "with the scheduler"
    owner = holder(store.engine)
    who = f" ({owner.owner})" if owner else ""
    return None, f"web only: another process{who} runs the scheduler on this database"


def _build_before_serving(config: Config) -> None:
    """Bring the output folder up to date, so that every link in a mail has its page."""
    site, errors = load_site(config)
    failures, _ = _report(errors, config.root, strict=False)
    if failures:
        click.echo(
            f"warning: {failures} content error(s); serving {config.output_dir} as it is", err=True
        )
        return
    count, report = _build(config, site, config.output_dir)
    click.echo(f"Output: {config.output_dir} ({count} files, {len(report.written)} rewritten)")


@subscribers.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    help="Delete sign-ups unconfirmed for this many days (default: subscribe.purge_pending_days).",
)
@click.pass_obj
def subscribers_purge(state: State, days: int | None) -> None:
    """Delete sign-ups never confirmed (double opt-in) within N days (GDPR Art. 17)."""
    from .subscriptions import purge_unconfirmed

    config = state.config()
    store = _open_store(config)
    try:
        removed = purge_unconfirmed(config, store, days=days)
    finally:
        store.close()
    shown = config.settings.subscribe.purge_pending_days if days is None else days
    click.echo(f"purged {removed} unconfirmed sign-up(s) older than {shown} day(s)")


@subscribers.command("unsubscribe")
@click.argument("address")
@click.option("--note", help="Why, e.g. 'Brief vom 3. März'; goes into the consent ledger.")
@click.pass_obj
def subscribers_unsubscribe(state: State, address: str, note: str | None) -> None:
    """Unsubscribe a person on their behalf (consent ledger channel `admin`)."""
    from .subscriptions import unsubscribe_by_admin

    email = _address(address)
    store = _open_store(state.config())
    try:
        unsubscribe_by_admin(store, email, note)
    finally:
        store.close()
    click.echo(f"unsubscribed {email} (channel admin)")


def _schedule_lines(config: Config, view: Overview) -> list[str]:
    """The upcoming jobs and held sends of a scheduler overview, as printed."""
    lines = [f"Upcoming jobs ({config.settings.site.timezone}):"]
    if not any(job.id.startswith(SEND_PREFIX) for job in view.jobs):
        lines.append("  no scheduled sends (no ready issue with a send_at still to come)")
    for job in view.jobs:
        when = _when(job.next_run, config) if job.next_run else "paused"
        lines.append(f"  {when}  {job.description}")
    for entry in view.held:
        lines.append(_held_line(config, entry.slug, entry.send_at))
    return lines


def _held_line(config: Config, slug: str, due_at: datetime) -> str:
    return f"held: {slug} was due at {_when(due_at, config)}; release with `comms send {slug}`"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.pass_obj
def schedule(state: State, as_json: bool) -> None:
    """List the scheduler's upcoming jobs with their next run in local time, and held sends.

    Works without a running scheduler: then it shows what `comms serve` would schedule now.
    """
    from .database import now_utc
    from .scheduler import overview

    config = state.config()
    store = _open_store(config)
    view = overview(config, store, now_utc())
    holder = view.holder
    if as_json:
        running = None if holder is None else vars(holder)
        jobs = [vars(job) for job in view.jobs]
        held = [{"issue": e.slug, "due_at": e.send_at} for e in view.held]
        click.echo(_json({"scheduler": running, "jobs": jobs, "held": held}))
        return
    if holder is None:
        click.echo("Scheduler: not running; `comms serve` starts it with these jobs")
    else:
        click.echo(
            f"Scheduler: running in {holder.owner} "
            f"(last heartbeat {_when(holder.heartbeat_at, config)})"
        )
    for line in _schedule_lines(config, view):
        click.echo(line)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning CommsError into a message and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="comms", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except ConfigError as exc:
        if debug:
            raise
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(exc.exit_code)
    except CommsError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
