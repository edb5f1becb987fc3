"""The `subscribers` group: add, import, export, show, remove, purge, reduce, unsubscribe,
revoke-links."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from comms.core.errors import CommsError, LocalError

from .common import (
    State,
    _address,
    _json,
    _open_store,
    cli,
)


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
@click.option("--language", help="An enabled language, de or en (default: site.language).")
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
    """Add one person; without --confirmed they get the confirmation mail and stay pending."""
    from comms.audience.mailer import MailNotSent
    from comms.audience.subscriber_csv import check_person
    from comms.audience.subscriptions import sign_up_by_admin
    from comms.db.people import Consent

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
        return
    try:
        result = sign_up_by_admin(config, store, person)
    except MailNotSent as exc:
        raise CommsError(
            f"{exc}; {person.email} stays pending: run `comms subscribers add {person.email}` "
            "again to send a new one"
        ) from None
    if result.before == "suppressed":
        raise CommsError(f"{person.email} is on the suppression list; not added")
    if not result.mailed:
        raise CommsError(
            f"{person.email} is already a subscriber ({result.before}); no confirmation mail sent"
        )
    if result.before is None:
        click.echo(
            f"added {person.email} as pending: confirmation mail sent to {person.email} "
            "(double opt-in); no newsletter until they confirm"
        )
    else:
        click.echo(
            f"{person.email} was {result.before} already: new confirmation mail sent to "
            f"{person.email} (double opt-in)"
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
    from comms.audience.subscriber_csv import Problems, read_csv
    from comms.db.people import Consent

    _consent_options(confirmed, consent_note)
    config = state.config()
    store = _open_store(config)
    problems = Problems(file.as_posix())
    if confirmed:
        event = Consent("import", f"import {file.name}", channel="cli", note=consent_note)
    else:
        event = Consent("request", f"import {file.name}", channel="cli", note=consent_note)
    rows = read_csv(file, config, problems)
    try:
        result, notes = store.import_subscribers(rows, event, confirmed)
    except LocalError as exc:
        raise LocalError(
            f"{exc}; nothing of {file} was imported (an import is one transaction): "
            "free space, then run it again"
        ) from exc
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
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", help="Output format."
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
@click.pass_obj
def subscribers_export(state: State, fmt: str, output: Path | None) -> None:
    """Write every subscriber as CSV or JSON."""
    from comms.audience.subscriber_csv import write_export
    from comms.core.files import private_writer

    store = _open_store(state.config())
    if output is None:
        write_export(store.iter_subscribers(), sys.stdout, fmt)
        sys.stdout.flush()
        return
    # Every address and name: 0600 like the database (docs/security.md), whatever the umask.
    with private_writer(output) as raw, io.TextIOWrapper(raw, "utf-8", newline="") as handle:
        count = write_export(store.iter_subscribers(), handle, fmt)
    click.echo(f"exported {count} subscriber(s) to {output}", err=True)


@subscribers.command("show")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
@click.pass_obj
def subscribers_show(state: State, address: str, as_json: bool) -> None:
    """Print everything stored about one person (GDPR Art. 15)."""
    email = _address(address)
    report = _open_store(state.config()).report(email)
    if report is None and as_json:
        # Machines get JSON for every answer; nothing stored is exit 1 all the same.
        click.echo(_json({"email": email, "status": None, "suppressed": None}))
        sys.exit(1)
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
    if report.get("bounces"):  # shown once something came back
        click.echo(f"bounces and complaints ({len(report['bounces'])}):")
    for row in report.get("bounces", []):
        code = f" {row['status']}" if row["status"] else ""
        issue = f" ({row['issue']})" if row["issue"] else ""
        click.echo(f"  {row['at'].isoformat()} {row['kind']}{code} via {row['source']}{issue}")


@subscribers.command("remove")
@click.argument("address")
@click.pass_obj
def subscribers_remove(state: State, address: str) -> None:
    """Erase one person (GDPR Art. 17); only a suppression hash stays, so they get no mail."""
    from comms.audience.data_requests import erase_person

    email = _address(address)
    config = state.config()
    removed = erase_person(config, _open_store(config), email)
    if not removed["subscriber"]:
        click.echo(f"no subscriber {email}; added the address's hash to the suppression list")
        return
    outbox = f", {removed['outbox']} outbox file(s)" if removed["outbox"] else ""
    click.echo(
        f"erased {email}: profile, {removed['consent']} consent record(s), personal link of "
        f"{removed['deliveries']} delivery record(s){outbox}; kept: the suppression hash, so "
        "the address is never mailed or imported again"
    )


@subscribers.command("purge")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    help="Delete sign-ups unconfirmed for this many days (default: subscribe.purge_pending_days).",
)
@click.pass_obj
def subscribers_purge(state: State, days: int | None) -> None:
    """Delete sign-ups never confirmed (double opt-in) within N days (GDPR Art. 17)."""
    from comms.audience.subscriptions import purge_unconfirmed

    config = state.config()
    store = _open_store(config)
    try:
        removed = purge_unconfirmed(config, store, days=days)
    finally:
        store.close()
    shown = config.settings.subscribe.purge_pending_days if days is None else days
    click.echo(f"purged {removed} unconfirmed sign-up(s) older than {shown} day(s)")


@subscribers.command("reduce")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    help="Reduce subscriptions ended this many days ago (default: subscribe.retention_days).",
)
@click.pass_obj
def subscribers_reduce(state: State, days: int | None) -> None:
    """Reduce ended subscriptions to the proof of consent (retention, as the daily job does)."""
    from comms.audience.subscriptions import reduce_ended

    config = state.config()
    store = _open_store(config)
    try:
        reduced = reduce_ended(config, store, days=days)
    finally:
        store.close()
    shown = config.settings.subscribe.retention_days if days is None else days
    click.echo(
        f"reduced {reduced} subscription(s) ended more than {shown} day(s) ago to the proof "
        "of consent"
    )


@subscribers.command("unsubscribe")
@click.argument("address")
@click.option("--note", help="Why, e.g. 'Brief vom 3. März'; goes into the consent ledger.")
@click.pass_obj
def subscribers_unsubscribe(state: State, address: str, note: str | None) -> None:
    """Unsubscribe a person on their behalf (consent ledger channel `admin`)."""
    from comms.audience.subscriptions import unsubscribe_by_admin

    email = _address(address)
    store = _open_store(state.config())
    try:
        unsubscribe_by_admin(store, email, note)
    finally:
        store.close()
    click.echo(f"unsubscribed {email} (channel admin)")


@subscribers.command("revoke-links")
@click.argument("address")
@click.pass_obj
def subscribers_revoke_links(state: State, address: str) -> None:
    """Log out all links of a person: earlier settings and data links stop working."""
    from comms.audience.subscriptions import revoke_links_by_admin

    email = _address(address)
    store = _open_store(state.config())
    try:
        version = revoke_links_by_admin(store, email)
    finally:
        store.close()
    click.echo(
        f"logged out all links of {email} (key version {version}): earlier settings, export "
        "and erasure links no longer work; the next newsletter carries new ones; unsubscribe "
        "links keep working"
    )
