"""What is kept about a person: the report of everything stored (GDPR Art. 15) and the
retention rule that reduces an ended subscription to the proof of consent."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from comms.db.feedback import events_of, scrub_events
from comms.db.status import SubscriberStatus
from comms.db.tables import consent, deliveries, link_requests, subscribers

if TYPE_CHECKING:
    from comms.db.store import Store

#: Ended subscriptions: the retention rule reduces them after `subscribe.retention_days`.
ENDED = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
#: Reduced records get an address in a reserved domain (RFC 2606): unique, never mailable.
REDUCED_DOMAIN = "reduced.invalid"
#: The consent columns that prove consent and its withdrawal; the rest goes at reduction.
PROOF = ("action", "at", "source", "consent_version", "channel")


def _ledger(conn: Connection, *sids: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(consent).where(consent.c.subscriber_id.in_(sids)).order_by(consent.c.id)
    )
    return [
        {k: v for k, v in row._mapping.items() if k not in ("id", "subscriber_id")} for row in rows
    ]


def _reduced_ids(conn: Connection, key: str) -> list[int]:
    s = subscribers.c
    query = sa.select(s.id).where(s.suppression_key == key, s.reduced_at.is_not(None))
    return list(conn.execute(query).scalars())


def report(store: Store, email: str) -> dict[str, Any] | None:
    """Everything stored about one person; None when nothing is.

    Reduced records of earlier subscriptions (found by the suppression key) add their consent
    events before the person's own.
    """
    person = store.find(email)
    reason = store.suppression_reason(email)
    with store.reading() as conn:
        earlier = _reduced_ids(conn, store.key(email))
        kept = _ledger(conn, *earlier) if earlier else []
        if person is None:
            if reason is None and not kept:
                return None
            # Only the suppression hash (and a reduced proof of consent) is left.
            status = "erased" if reason == "erased" else "reduced" if kept else "suppressed"
            data = {"email": email, "suppressed": reason, "status": status}
            return data | {"consent": kept, "deliveries": []}
        ledger = kept + _ledger(conn, person.id)
        sent = store.ledger.deliveries_of(conn, person.id)
        bounces = events_of(conn, person.id)
    profile = {k: v for k, v in person.__dict__.items() if k not in ("id", "link_version")}
    return (
        {"email": email, "suppressed": reason}
        | profile
        | {"consent": ledger, "deliveries": sent, "bounces": bounces}
    )


def reduce_ended(store: Store, before: datetime, at: datetime) -> int:
    """Reduce subscriptions that ended before `before` to the proof of consent.

    Kept: the consent events' action, time, source, consent version and channel, the status
    with its dates, and the suppression key (an HMAC of the address, so that the proof can be
    found again from the address). Gone: address, name, choices, IP, user agent, notes, which
    issues were sent, bounce diagnostics, open links. The uid changes, so old links name
    nobody; the one-click unsubscribe still answers. Returns how many were reduced.
    """
    s = subscribers.c
    due = sa.select(s.id).where(
        s.status.in_(ENDED), s.reduced_at.is_(None), s.unsubscribed_at < before
    )
    count = 0
    with store.engine.begin() as conn:
        for sid in list(conn.execute(due).scalars()):
            uid = secrets.token_urlsafe(12)
            conn.execute(
                sa.update(consent)
                .where(consent.c.subscriber_id == sid)
                .values(ip=None, user_agent=None, note=None)
            )
            store.ledger.unlink_deliveries(conn, sid, at)
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.subscriber_id == sid)
                .values(subscriber_id=None)
            )
            scrub_events(conn, sid)
            conn.execute(sa.delete(link_requests).where(link_requests.c.subscriber_id == sid))
            conn.execute(
                sa.update(subscribers)
                .where(s.id == sid)
                .values(
                    uid=uid,
                    email=f"{uid.lower()}@{REDUCED_DOMAIN}",
                    name=None,
                    topics="",
                    regions="",
                    reduced_at=at,
                    updated_at=at,
                )
            )
            count += 1
    return count


def delete_reduced(conn: Connection, key: str) -> int:
    """Delete the reduced records of an address (erasure: only the suppression key stays)."""
    ids = _reduced_ids(conn, key)
    if ids:
        conn.execute(sa.delete(subscribers).where(subscribers.c.id.in_(ids)))
    return len(ids)
