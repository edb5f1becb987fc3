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
from functools import partial
from pathlib import Path

from comms.alerts import texts
from comms.alerts.campaign_checks import check_campaigns
from comms.alerts.notify import Alerter
from comms.content.site import read_site
from comms.core.clock import now_utc
from comms.core.config import Config, load_config
from comms.core.errors import CommsError, ContentError
from comms.db.gauges import record_refresh
from comms.db.incidents import clear_problem, record_problem
from comms.db.outage import Stopped, patiently
from comms.db.publishing import DbPublishState
from comms.db.store import Store, open_store
from comms.publish.refresh import publish_now
from comms.schedule import plan as timetable
from comms.sending.campaign import SendReport, clear, retry_due, send_to_list
from comms.sending.rules import READY, NotSendable, Refusal, Request
from comms.sending.run import SendOptions

log = logging.getLogger("comms.scheduler")

#: Set while the scheduler shuts down: a running send stops after the messages in flight.
STOP = threading.Event()


@contextmanager
def _opened(config_path: str | None) -> Iterator[tuple[Config, Store]]:
    config = load_config(Path(config_path) if config_path else None)
    store = patiently("scheduler job", partial(open_store, config), STOP)
    try:
        yield config, store
    finally:
        store.close()


def scheduled_send(config_path: str | None, slug: str, due: str) -> str:
    """Send an issue at its `send_at`, as `comms send ISSUE` would; hold it when stale.

    A refusal or failure is recorded (`comms status`, `comms schedule`) and logged as one line
    (the PATH:LINE problems of a refusal before it), never as a traceback: the job returns
    `refused` or `failed`. Only an unexpected exception (a bug) propagates, recorded first.
    """
    due_at = datetime.fromisoformat(due)
    with _opened(config_path) as (config, store):
        now = now_utc()
        if timetable.is_stale(config, due_at, now):
            timetable.hold(store.engine, slug, due_at, now)
            log.warning("send of %s held: due at %s, now %s", slug, due_at, now)
            return "held"
        try:
            outcome = _send_when_due(config, store, slug, due_at, now)
        except Stopped:
            log.warning("send of %s interrupted by the shutdown while the database was away", slug)
            return "interrupted"
        except NotSendable as exc:
            return _refused(config, store, slug, due_at, str(exc), exc.problems)
        except CommsError as exc:
            return _failed(config, store, slug, due_at, str(exc))
        except Exception as exc:
            _failed(config, store, slug, due_at, f"{type(exc).__name__}: {exc}")
            raise
        if isinstance(outcome, Refusal):
            return _refused(config, store, slug, due_at, outcome.reason, list(outcome.problems))
        if isinstance(outcome, str):
            return outcome
        report = outcome
        if report.archive_problem:
            log.warning("send of %s: %s", slug, report.archive_problem)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
        fields = {"campaign": slug, "counts": report.counts}  # keys of a JSON log line
        if report.interrupted:
            # No failure: the retry pass resumes the campaign.
            log.warning(
                "send of %s interrupted by the shutdown: the messages in flight were recorded, "
                "the other claimed rows handed back; the retry pass resumes it (%s)",
                slug,
                counts,
                extra=fields,
            )
            return "interrupted"
        if report.stopped:
            stopped = f"campaign stopped: {report.stopped} ({counts})"
            return _failed(config, store, slug, due_at, stopped)
        clear_problem(store.engine, slug)
    log.info("sent %s: %s", slug, counts, extra=fields)
    return "sent"


def _send_when_due(
    config: Config, store: Store, slug: str, due_at: datetime, now: datetime
) -> str | SendReport | Refusal:
    """Ask the send rules as of `due_at` and send; a word when there is nothing to send, the
    refusal when the issue file has errors."""
    site, errors = read_site(config)
    issue = site.issues.get(slug)
    if issue is None:
        own = [e for e in errors if not e.warning and e.path.stem == slug]
        if own:
            return Refusal("no-errors", f"issue '{slug}' has errors", tuple(own))
        log.info("send of %s skipped: the issue is gone; the next sync cancels the job", slug)
        return "skipped"
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
    # Judged as of the issue's send_at, when this job is due; too late is `is_stale`.
    request = Request.when_due(issue, now)
    cleared = patiently(f"send {slug}", partial(clear, config, store, site, errors, request), STOP)
    return send_to_list(config, store, cleared, options)


def _refused(
    config: Config,
    store: Store,
    slug: str,
    due_at: datetime,
    reason: str,
    problems: list[ContentError],
) -> str:
    """Record a refused send and log every problem as PATH:LINE, as `comms send` prints them,
    then the refusal in one line."""
    for problem in problems:
        log.error("send of %s: %s", slug, problem.format(config.root))
    record_problem(store.engine, slug, "refused", reason, due_at, now_utc())
    log.error("scheduled send of %s refused, nothing sent: %s", slug, reason)
    alert = texts.send_problem(config, slug, "refused", reason, due_at)
    Alerter(config, store.engine).send(alert)
    return "refused"


def _failed(config: Config, store: Store, slug: str, due_at: datetime, reason: str) -> str:
    """Record a failed send, log it in one line and alert the office."""
    record_problem(store.engine, slug, "failed", reason, due_at, now_utc())
    log.error("scheduled send of %s failed: %s", slug, reason)
    Alerter(config, store.engine).send(texts.send_problem(config, slug, "failed", reason, due_at))
    return "failed"


def check_alerts(config_path: str | None) -> None:
    """Alert the office of finished, stalled or bouncing campaigns (`[alerts]`)."""
    with _opened(config_path) as (config, store):
        sent = check_campaigns(Alerter(config, store.engine), now_utc())
    if sent:
        log.info("alerts: %d sent", sent)


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
        report = publish_now(config, DbPublishState.of(store.engine), tell_hubs=True)
        record_refresh(store.engine, now_utc())
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
        fields = {"campaign": report.campaign.slug, "counts": report.counts}
        log.info("retry pass %s: %s", report.campaign.slug, report.counts, extra=fields)


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
