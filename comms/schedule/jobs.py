"""The scheduler's jobs: module-level functions taking the config path and primitives.

Each does what its CLI command does; `comms/schedule/runner.py` wires them to triggers.
Primitives, not objects, because APScheduler stores the jobs (docs/requirements.md R4).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from comms.content.site import read_site
from comms.core.clock import now_utc
from comms.core.config import Config, load_config
from comms.core.errors import CommsError, ContentError
from comms.db.shared import DbPublishState
from comms.db.store import Store, open_store
from comms.publish.refresh import publish_now
from comms.schedule import plan as timetable
from comms.sending.campaign import clear, retry_due, send_to_list
from comms.sending.rules import READY, NotSendable, Request
from comms.sending.run import SendOptions

log = logging.getLogger("comms.scheduler")

#: Set while the scheduler shuts down: a running send stops after the messages in flight.
STOP = threading.Event()


@contextmanager
def _opened(config_path: str | None) -> Iterator[tuple[Config, Store]]:
    config = load_config(Path(config_path) if config_path else None)
    store = open_store(config)
    try:
        yield config, store
    finally:
        store.close()


def scheduled_send(config_path: str | None, slug: str, due: str) -> str:
    """Send an issue at its `send_at`, as `comms send ISSUE` would; hold it when stale."""
    due_at = datetime.fromisoformat(due)
    with _opened(config_path) as (config, store):
        now = now_utc()
        if timetable.is_stale(config, due_at, now):
            timetable.hold(store.engine, slug, due_at, now)
            log.warning("send of %s held: due at %s, now %s", slug, due_at, now)
            return "held"
        site, errors = read_site(config)
        issue = site.issues.get(slug)
        if issue is None:
            own = [e for e in errors if not e.warning and e.path.stem == slug]
            if own:
                _refused(config, slug, f"issue '{slug}' has errors", own)
            raise CommsError(f"scheduled send of {slug}: the issue is gone")
        refusal = READY.reason(issue)
        if refusal is not None:
            log.info("send of %s skipped: %s; the next sync cancels the job", slug, refusal)
            return "skipped"
        # Instants, not `!=`: Python never equates an ambiguous local time (the repeated hour)
        # with a time in another zone.
        when = issue.send_at.timestamp() if issue.send_at else None
        if when != due_at.timestamp():
            log.info("send of %s skipped: the issue changed; the next sync moves the job", slug)
            return "skipped"
        options = replace(SendOptions.of(config.settings.delivery), stop=STOP)
        try:
            # Judged as of the issue's send_at, when this job is due; too late is `is_stale`.
            cleared = clear(config, store, site, errors, Request.when_due(issue, now))
        except NotSendable as exc:
            _refused(config, slug, str(exc), exc.problems)
        report = send_to_list(config, store, cleared, options)
        if report.archive_problem:
            log.warning("send of %s: %s", slug, report.archive_problem)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
    if report.stopped:
        log.error("send of %s stopped: %s (%s)", slug, report.stopped, counts)
        return "stopped"
    log.info("sent %s: %s", slug, counts)
    return "sent"


def _refused(config: Config, slug: str, reason: str, problems: list[ContentError]) -> NoReturn:
    """Log every problem of a refused send as PATH:LINE, as `comms send` prints them, then
    fail the job (the scheduler logs it as failed, like `comms send` exiting 1)."""
    for problem in problems:
        log.error("send of %s: %s", slug, problem.format(config.root))
    raise CommsError(f"scheduled send of {slug} refused, nothing sent: {reason}") from None


def compose_digest(config_path: str | None, slug: str, due: str) -> str:
    """Compose a digest's issue at its time, as `comms digest run SLUG` would; the issue file
    existing is the guard that makes it once (a rerun, another host)."""
    from comms.publish.digest_compose import run_digest, run_time

    config = load_config(Path(config_path) if config_path else None)
    site, _ = read_site(config)
    digest = site.digests.get(slug)
    due_at = datetime.fromisoformat(due)
    day = due_at.astimezone(config.tz).date()
    if digest is None or run_time(digest, day, config).timestamp() != due_at.timestamp():
        log.info("digest %s skipped: the definition changed; the next sync moves the job", slug)
        return "skipped"
    result = run_digest(config, site, digest, day, dry_run=False)
    composed = result.composition
    if composed.text is None:
        log.info("digest %s on %s: nothing composed, %s", slug, day, composed.reason)
        return "nothing"
    if result.existed:
        log.info("digest %s on %s: the issue exists already", slug, day)
        return "exists"
    log.info("digest %s: composed %s (%d item(s))", slug, composed.path.name, len(composed.items))
    return "composed"


def refresh_feeds(config_path: str | None) -> None:
    """Rebuild and ping WebSub hubs, as `comms refresh` does."""
    with _opened(config_path) as (config, store):
        report = publish_now(config, DbPublishState(store.engine), tell_hubs=True)
    log.info(
        "refresh: %d written, %d unchanged, %d feed(s) changed, %d ping(s) failed",
        len(report.write.written),
        len(report.write.unchanged),
        len(report.changed_feeds),
        len(report.failed),
    )


def retry_pass(config_path: str | None) -> None:
    """Send the deliveries whose retry time has come, in every campaign."""
    config = load_config(Path(config_path) if config_path else None)
    for report in retry_due(config, stop=STOP):
        log.info("retry pass %s: %s", report.campaign.slug, report.counts)


def housekeeping(config_path: str | None) -> None:
    """Purge sign-ups that were never confirmed, reduce ended subscriptions past
    `subscribe.retention_days` to the proof of consent, forget expired mailed links."""
    from comms.audience.subscriptions import purge_unconfirmed, reduce_ended

    with _opened(config_path) as (config, store):
        count = purge_unconfirmed(config, store)
        reduced = reduce_ended(config, store)
        links = store.links.forget(now_utc())
    log.info(
        "housekeeping: purged %d unconfirmed sign-up(s), reduced %d ended subscription(s), "
        "forgot %d expired link(s)",
        count,
        reduced,
        links,
    )


def fetch_bounces(config_path: str | None) -> None:
    """Read the bounce mailbox (`comms bounces fetch`)."""
    from comms.bounces.fetch import fetch

    with _opened(config_path) as (config, store):
        summary = fetch(config, store)
    log.info("bounces: %s", summary.line())
