"""What a bounce or complaint does: hard → suppressed at once, soft → counted, complaint → out.

A report is trusted only through what we put into the mail: the signed VERP envelope sender
(a bad signature is a forgery: logged, nothing changes) or, when a relay rewrote the envelope,
the keyed Message-ID of one of our deliveries together with the address it went to
(docs/bounces.md says what that fallback still trusts). Every action is a consent-ledger event
carrying the status code and diagnostic; every event is a `bounce_events` row, so `comms status`
can count them per issue and each key (report Message-ID, webhook event) is acted on only once.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from enum import StrEnum

from comms.bounces.parse import Failure, Kind, Report
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.db.feedback import BounceEvent, Feedback, Target
from comms.db.people import Consent, normalise_address
from comms.db.store import Store
from comms.mail.message import is_unkeyed_message_id
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


#: The kinds of report that change a person's state.
_ACTING = (Kind.HARD, Kind.SOFT, Kind.COMPLAINT)


def _by_verp(config: Config, store: Store, report: Report) -> Target | Outcome | None:
    """The delivery a signed VERP address of the report names; None when it carries none."""
    local_part = config.settings.bounces.local_part
    for address in report.envelope:
        verp = read_verp(store.secret, address, local_part)
        if verp is None:
            continue
        if not verp.valid:
            log.warning("forged bounce: %s has a bad signature; nothing changed", address)
            return Outcome.FORGED
        found = Feedback(store.engine).by_delivery(verp.delivery_id)
        if found is None:
            log.warning(
                "bounce for unknown delivery %s (%s); nothing changed", verp.delivery_id, address
            )
            return Outcome.UNKNOWN
        return found
    return None


def _same_address(named: str, recorded: str) -> bool:
    """Whether a report's `named` address is the `recorded` one, as the store compares them."""
    try:
        return normalise_address(named) == normalise_address(recorded)
    except ValueError:  # not an address at all (a redacted or mangled field)
        return False


def _by_message_id(store: Store, report: Report) -> tuple[Target, Failure] | Outcome:
    """The delivery whose Message-ID the report quotes, and the outcome it states for that
    delivery's address: trusted only when both match what the ledger recorded.

    A complaint that names no recipient is taken as about the Message-ID's own recipient:
    feedback loops redact the address (RFC 6590) and send to a fixed address, not to VERP.
    """
    mid = report.original_message_id
    found = Feedback(store.engine).by_message_id(mid) if mid else None
    if found is None or mid is None:
        log.warning(
            "%s report %s names no delivery of ours (no VERP address, no known Message-ID); "
            "nothing changed",
            report.kind,
            report.message_id or "without Message-ID",
        )
        return Outcome.UNKNOWN
    if found.issue and found.uid and is_unkeyed_message_id(mid, found.issue, found.uid):
        log.warning(
            "%s report %s quotes a Message-ID from before they were keyed, which anyone can "
            "compute from a link; nothing changed",
            report.kind,
            report.message_id or "without Message-ID",
        )
        return Outcome.UNKNOWN
    acting = [f for f in report.failures if f.kind in _ACTING]
    recorded = found.email or ""
    about = [f for f in acting if any(_same_address(a, recorded) for a in f.addresses())]
    about = about or [f for f in acting if f.kind is Kind.COMPLAINT and not f.addresses()]
    failure = report.worst(about)
    if failure is None:
        log.warning(
            "%s report %s quotes our Message-ID %s but names another recipient than the one "
            "it was sent to; nothing changed",
            report.kind,
            report.message_id or "without Message-ID",
            mid,
        )
        return Outcome.UNKNOWN
    return found, failure


def handle_report(config: Config, store: Store, report: Report, data: bytes) -> Outcome:
    """Act on one message from the bounce mailbox."""
    failure = report.worst()
    if failure is None or failure.kind not in _ACTING:
        return Outcome.IGNORED
    target = _by_verp(config, store, report)
    if target is None:
        matched = _by_message_id(store, report)
        if isinstance(matched, Outcome):
            return matched
        target, failure = matched
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
