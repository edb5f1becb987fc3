"""What a bounce or complaint does: hard → suppressed at once, soft → counted, complaint → out.

A report is trusted only through what we put into the mail: the signed VERP envelope sender
(a bad signature is a forgery: logged, nothing changes) or, when a relay rewrote the envelope,
the Message-ID of one of our deliveries. Every action is a consent-ledger event carrying the
status code and diagnostic; every event is a `bounce_events` row, so `comms status` can count
them per issue and each key (report Message-ID, webhook event) is acted on only once.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from enum import StrEnum

from comms.bounces.parse import Kind, Report
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.db.feedback import BounceEvent, Feedback, Target
from comms.db.people import Consent
from comms.db.store import Store
from comms.mail.verp import read_verp

log = logging.getLogger("comms.bounces")

FETCH_SOURCE = "comms bounces fetch"


class Outcome(StrEnum):
    """What handling one report or event did."""

    SUPPRESSED = "suppressed"  # the person is now bounced / complained / unsubscribed
    COUNTED = "counted"  # a soft bounce below the limit, or an event for someone already out
    DUPLICATE = "duplicate"  # this event was handled before
    IGNORED = "ignored"  # not a bounce: an auto-reply, a delay warning, a success notice
    FORGED = "forged"  # a VERP address with a bad signature
    UNKNOWN = "unknown"  # names no delivery or person we know


def _note(kind: str, status: str | None, diagnostic: str | None, issue: str | None) -> str:
    words = [f"{kind} bounce" if kind in ("hard", "soft") else kind]
    if status:
        words.append(status)
    text = " ".join(words)
    if diagnostic:
        text += f": {' '.join(diagnostic.split())[:400]}"
    return text + (f" (issue {issue})" if issue else "")


def apply(
    config: Config,
    store: Store,
    target: Target,
    event: BounceEvent,
    source: str,
    channel: str,
) -> Outcome:
    """Record one event for `target` and act on it as the policy says."""
    if target.subscriber_id is None or target.uid is None:
        log.warning(
            "%s: %s event %s for an erased subscriber: ignored", source, event.kind, event.key
        )
        return Outcome.UNKNOWN
    settings = config.settings.bounces
    consent = Consent(
        action={"complaint": "complaint", "unsubscribe": "unsubscribe"}.get(event.kind, "bounce"),
        source=source,
        channel="complaint" if event.kind == "complaint" else channel,
        note=_note(event.kind, event.status, event.diagnostic, target.issue),
    )
    since = now_utc() - timedelta(days=settings.soft_days)
    result = store.record_feedback(target.uid, event, consent, settings.soft_limit, since)
    outcome = Outcome(result)
    log.info(
        "%s: %s %s for %s (%s): %s",
        source,
        event.kind,
        event.status or "-",
        target.email,
        target.issue or "no delivery",
        outcome,
    )
    return outcome


def _target(config: Config, store: Store, report: Report) -> Target | Outcome:
    """Whom a report is about: its VERP address, else the Message-ID of our original."""
    feedback = Feedback(store.engine)
    local_part = config.settings.bounces.local_part
    for address in report.envelope:
        verp = read_verp(store.secret, address, local_part)
        if verp is None:
            continue
        if not verp.valid:
            log.warning("forged bounce: %s has a bad signature; nothing changed", address)
            return Outcome.FORGED
        found = feedback.by_delivery(verp.delivery_id)
        if found is None:
            log.warning(
                "bounce for unknown delivery %s (%s); nothing changed", verp.delivery_id, address
            )
            return Outcome.UNKNOWN
        return found
    if report.original_message_id:
        found = feedback.by_message_id(report.original_message_id)
        if found is not None:
            return found
    log.warning(
        "%s report %s names no delivery of ours (no VERP address, no known Message-ID); "
        "nothing changed",
        report.kind,
        report.message_id or "without Message-ID",
    )
    return Outcome.UNKNOWN


def handle_report(config: Config, store: Store, report: Report, data: bytes) -> Outcome:
    """Act on one message from the bounce mailbox."""
    failure = report.worst()
    if failure is None or failure.kind not in (Kind.HARD, Kind.SOFT, Kind.COMPLAINT):
        return Outcome.IGNORED
    target = _target(config, store, report)
    if isinstance(target, Outcome):
        return target
    # The report's Message-ID, or its bytes when it has none: a re-read changes nothing.
    ident = report.message_id or hashlib.sha256(data).hexdigest()
    key = f"mail:{hashlib.sha256(f'{ident}/{target.delivery_id}'.encode()).hexdigest()[:40]}"
    event = BounceEvent(
        key=key,
        kind=str(failure.kind),
        source="arf" if failure.kind is Kind.COMPLAINT else "dsn",
        status=failure.status,
        diagnostic=failure.diagnostic,
        delivery_id=target.delivery_id,
        campaign_id=target.campaign_id,
    )
    return apply(config, store, target, event, FETCH_SOURCE, "dsn")
