"""Bounce and complaint events: who a report names, one row per event, counts per issue.

The rows live in `bounce_events`; subscriber state and consent rows change only through
`comms.db.store.Store.record_feedback`, which asks `verdict` inside its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.db.engine import read_only
from comms.db.status import SubscriberStatus
from comms.db.tables import bounce_events, campaigns, deliveries, subscribers


@dataclass(frozen=True)
class Target:
    """The delivery and person a report or webhook event is about."""

    subscriber_id: int | None
    uid: str | None
    email: str | None
    status: str | None
    delivery_id: int | None = None
    campaign_id: int | None = None
    issue: str | None = None


@dataclass(frozen=True)
class BounceEvent:
    """One row of `bounce_events` as the policy hands it to the store."""

    key: str
    kind: str
    source: str
    status: str | None = None
    diagnostic: str | None = None
    delivery_id: int | None = None
    campaign_id: int | None = None


#: The kinds `comms status ISSUE` counts.
BOUNCE_COUNTS = ("hard", "soft", "complaint")

_PEOPLE = (
    subscribers.c.id,
    subscribers.c.uid,
    subscribers.c.email,
    subscribers.c.status,
)


class Feedback:
    """Look-ups for the bounce policy (reads only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _delivery(self, where: sa.ColumnElement[bool]) -> Target | None:
        d = deliveries.c
        query = (
            sa.select(d.id, d.campaign_id, campaigns.c.slug, *_PEOPLE)
            .join(campaigns, campaigns.c.id == d.campaign_id)
            .outerjoin(subscribers, subscribers.c.id == d.subscriber_id)
            .where(where)
            .limit(1)
        )
        with read_only(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return Target(
            subscriber_id=m[subscribers.c.id],
            uid=m["uid"],
            email=m["email"],
            status=m["status"],
            delivery_id=m[d.id],
            campaign_id=m["campaign_id"],
            issue=m["slug"],
        )

    def by_delivery(self, delivery_id: int) -> Target | None:
        """The delivery with this id (from a VERP address)."""
        return self._delivery(deliveries.c.id == delivery_id)

    def by_message_id(self, message_id: str) -> Target | None:
        """The delivery whose message had this Message-ID (a report without VERP)."""
        return self._delivery(deliveries.c.message_id == message_id)

    def by_email(self, email: str) -> Target | None:
        """A person by address (an authenticated webhook event), with their latest delivery:
        providers report within minutes, so that is the issue the event is about."""
        s = subscribers.c
        mine = deliveries.alias("mine")
        latest = (
            sa.select(sa.func.max(mine.c.id)).where(mine.c.subscriber_id == s.id).scalar_subquery()
        )
        found = self._delivery(sa.and_(s.email == email, deliveries.c.id == latest))
        if found is not None:
            return found
        with read_only(self.engine) as conn:
            row = conn.execute(sa.select(*_PEOPLE).where(s.email == email)).first()
        if row is None:
            return None
        return Target(subscriber_id=row.id, uid=row.uid, email=row.email, status=row.status)

    def counts(self, campaign_id: int) -> dict[str, int]:
        """Bounces and complaints of one campaign by kind (every kind present, 0 if none)."""
        b = bounce_events.c
        with read_only(self.engine) as conn:
            rows = conn.execute(
                sa.select(b.kind, sa.func.count())
                .where(b.campaign_id == campaign_id)
                .group_by(b.kind)
            )
            found = {kind: int(n) for kind, n in rows}
        return {kind: found.get(kind, 0) for kind in BOUNCE_COUNTS}


def add_event(conn: Connection, sid: int | None, event: BounceEvent, at: datetime) -> bool:
    """Insert one event; False (and nothing written) when its key was seen before."""
    exists = conn.execute(
        sa.select(bounce_events.c.id).where(bounce_events.c.event_key == event.key)
    ).first()
    if exists is not None:
        return False
    conn.execute(
        sa.insert(bounce_events).values(
            event_key=event.key,
            kind=event.kind,
            source=event.source,
            at=at,
            status=event.status,
            diagnostic=event.diagnostic,
            subscriber_id=sid,
            campaign_id=event.campaign_id,
            delivery_id=event.delivery_id,
        )
    )
    return True


#: The state each kind of event ends a subscription with.
ENDS_WITH = {
    "hard": SubscriberStatus.BOUNCED,
    "soft": SubscriberStatus.BOUNCED,
    "complaint": SubscriberStatus.COMPLAINED,
    "unsubscribe": SubscriberStatus.UNSUBSCRIBED,
}
_OPEN = (SubscriberStatus.PENDING, SubscriberStatus.ACTIVE)


def verdict(
    conn: Connection,
    sid: int,
    status: SubscriberStatus,
    event: BounceEvent,
    at: datetime,
    limit: int,
    since: datetime,
) -> str | None:
    """Record `event` for a person in `status`; None when it ends the subscription, else why
    not: "duplicate" (key seen before) or "counted" (a soft bounce below `limit` since `since`,
    or a person already out — only a complaint outranks an earlier unsubscribe or bounce)."""
    if not add_event(conn, sid, event, at):
        return "duplicate"
    if event.kind == "soft" and soft_count(conn, sid, since) < limit:
        return "counted"
    ends = ENDS_WITH[event.kind]
    if status not in _OPEN and not (ends is SubscriberStatus.COMPLAINED and status is not ends):
        return "counted"
    return None


def soft_count(conn: Connection, sid: int, since: datetime) -> int:
    """Soft bounces of a person since `since`."""
    b = bounce_events.c
    query = sa.select(sa.func.count()).where(
        b.subscriber_id == sid, b.kind == "soft", b.at >= since
    )
    return int(conn.execute(query).scalar_one())


def events_of(conn: Connection, sid: int) -> list[dict[str, Any]]:
    """A person's bounce and complaint events, oldest first (for the GDPR report)."""
    b = bounce_events.c
    rows = conn.execute(
        sa.select(b.at, b.kind, b.source, b.status, b.diagnostic, campaigns.c.slug.label("issue"))
        .outerjoin(campaigns, campaigns.c.id == b.campaign_id)
        .where(b.subscriber_id == sid)
        .order_by(b.id)
    )
    return [dict(row._mapping) for row in rows]


def scrub_events(conn: Connection, sid: int) -> None:
    """Before erasure: keep the anonymous count, drop what quotes the address."""
    conn.execute(
        sa.update(bounce_events)
        .where(bounce_events.c.subscriber_id == sid)
        .values(diagnostic=None, subscriber_id=None)
    )
