"""Figures for reports, by aggregate queries only: one issue's send, its reach and counters;
the audience over time. No row names a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.engine import read_only
from comms.db.ledger import Campaign
from comms.db.status import WAITING, DeliveryStatus
from comms.db.tables import (
    bounce_events,
    campaign_reach,
    campaigns,
    daily_counts,
    deliveries,
    subscribers,
)


@dataclass(frozen=True)
class ReachRow:
    """Recipients who share one edition and one choice of regions and topics."""

    edition: str | None
    regions: tuple[str, ...]
    topics: tuple[str, ...]
    recipients: int


@dataclass(frozen=True)
class DayCount:
    """One counter of one day."""

    kind: str
    item: str
    day: date
    count: int


@dataclass(frozen=True)
class IssueFigures:
    """What the database knows of one issue's send."""

    campaign: Campaign
    #: Deliveries by status.
    statuses: dict[str, int]
    #: Deliveries not final that were tried at least once (they wait for a retry).
    deferred: int
    #: The last time a delivery changed (None before the first outcome).
    last_change: datetime | None
    #: The last time a delivery was accepted.
    last_sent: datetime | None
    reach: list[ReachRow]
    #: Bounce reports and complaints about this issue by kind (hard, soft, complaint,
    #: unsubscribe from a provider).
    feedback: dict[str, int]
    counters: list[DayCount] = field(default_factory=list)


def _slugs(padded: str | None) -> tuple[str, ...]:
    return tuple((padded or "").split())


def issue_figures(engine: Engine, slug: str) -> IssueFigures | None:
    """The figures of the issue `slug`, or None when it was never sent."""
    d = deliveries.c
    with read_only(engine) as conn:
        row = conn.execute(sa.select(campaigns).where(campaigns.c.slug == slug)).first()
        if row is None:
            return None
        campaign = Campaign.from_row(row)
        cid = campaign.id
        statuses: dict[str, int] = {}
        deferred = 0
        last_change: datetime | None = None
        last_sent: datetime | None = None
        waiting = d.status.in_(WAITING) & (d.attempts > 0)
        rows = conn.execute(
            sa.select(
                d.status,
                sa.func.count(),
                sa.func.sum(sa.case((waiting, 1), else_=0)),
                sa.func.max(d.updated_at),
            )
            .where(d.campaign_id == cid)
            .group_by(d.status)
        )
        for status, number, tried, changed in rows:
            statuses[status] = int(number)
            deferred += int(tried or 0)
            if changed is not None:
                last_change = changed if last_change is None else max(last_change, changed)
                if status == DeliveryStatus.SENT:
                    last_sent = changed
        r = campaign_reach.c
        reach = [
            ReachRow(edition, _slugs(regions), _slugs(topics), int(n))
            for edition, regions, topics, n in conn.execute(
                sa.select(r.edition, r.regions, r.topics, r.recipients).where(r.campaign_id == cid)
            )
        ]
        b = bounce_events.c
        feedback = {
            kind: int(n)
            for kind, n in conn.execute(
                sa.select(b.kind, sa.func.count()).where(b.campaign_id == cid).group_by(b.kind)
            )
        }
        c = daily_counts.c
        counters = [
            DayCount(kind, item, day, int(n))
            for kind, item, day, n in conn.execute(
                sa.select(c.kind, c.item, c.day, c.count)
                .where(c.subject == slug, c.kind.in_(("view", "unsubscribe", "click")))
                .order_by(c.kind, c.day, c.item)
            )
        ]
    return IssueFigures(
        campaign, statuses, deferred, last_change, last_sent, reach, feedback, counters
    )


@dataclass(frozen=True)
class Share:
    """How many subscribers share one value of a dimension (a region, topic or language)."""

    value: str
    count: int


@dataclass(frozen=True)
class AudienceFigures:
    """The audience over time and as it is now."""

    #: month ("2026-11") → event ("request", "confirm", "import", "unsubscribe", "bounce",
    #: "complaint", "erasure") → count.
    months: dict[str, dict[str, int]]
    #: Active subscribers now, per region, topic and language ("" = no choice).
    regions: list[Share]
    topics: list[Share]
    languages: list[Share]
    #: Subscribers by status now.
    statuses: dict[str, int]


def _month(value: date | datetime) -> str:
    return f"{value.year:04d}-{value.month:02d}"


def audience_figures(engine: Engine, start: datetime, end: datetime) -> AudienceFigures:
    """Consent actions and erasures per month between the days of `start` (inclusive) and `end`
    (exclusive), as counted when they happened; who is subscribed now per region, topic and
    language."""
    months: dict[str, dict[str, int]] = {}
    s = subscribers.c
    c = daily_counts.c
    with read_only(engine) as conn:
        for action, on, n in conn.execute(
            sa.select(c.subject, c.day, c.count).where(
                c.kind == "audience", c.day >= start.date(), c.day < end.date()
            )
        ):
            slot = months.setdefault(_month(on), {})
            slot[action] = slot.get(action, 0) + int(n)
        statuses = {
            status: int(n)
            for status, n in conn.execute(
                sa.select(s.status, sa.func.count())
                .where(s.reduced_at.is_(None))
                .group_by(s.status)
            )
        }
        active = s.status == "active"
        shares: dict[str, dict[str, int]] = {"regions": {}, "topics": {}, "languages": {}}
        for regions, topics, language, n in conn.execute(
            sa.select(s.regions, s.topics, s.language, sa.func.count())
            .where(active)
            .group_by(s.regions, s.topics, s.language)
        ):
            for name, values in (
                ("regions", _slugs(regions) or ("",)),
                ("topics", _slugs(topics) or ("",)),
                ("languages", (language,)),
            ):
                for value in values:
                    shares[name][value] = shares[name].get(value, 0) + int(n)

    def listed(name: str) -> list[Share]:
        return [Share(v, n) for v, n in sorted(shares[name].items(), key=lambda i: (-i[1], i[0]))]

    return AudienceFigures(
        dict(sorted(months.items())),
        listed("regions"),
        listed("topics"),
        listed("languages"),
        statuses,
    )


@dataclass(frozen=True)
class EditionProgress:
    """Where one edition of a campaign's send stands: its deliveries by outcome."""

    #: The edition's language ("" for deliveries queued before editions).
    edition: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: Not final, tried at least once: waiting for a retry.
    deferred: int = 0
    #: Not final, not tried yet.
    remaining: int = 0

    @property
    def total(self) -> int:
        """Every delivery of the edition."""
        return self.sent + self.failed + self.skipped + self.deferred + self.remaining

    @property
    def settled(self) -> int:
        """The final deliveries (sent, failed or skipped)."""
        return self.sent + self.failed + self.skipped


def edition_progress(engine: Engine, campaign_id: int) -> list[EditionProgress]:
    """A campaign's deliveries per edition and outcome, largest edition first (one aggregate
    query, whatever the number of deliveries)."""
    d = deliveries.c
    tried = d.status.in_(WAITING) & (d.attempts > 0)
    query = (
        sa.select(d.edition, d.status, sa.func.count(), sa.func.sum(sa.case((tried, 1), else_=0)))
        .where(d.campaign_id == campaign_id)
        .group_by(d.edition, d.status)
    )
    found: dict[str, dict[str, int]] = {}
    with read_only(engine) as conn:
        for edition, status, number, deferred in conn.execute(query):
            counts = found.setdefault(edition or "", {})
            if status in WAITING:
                counts["deferred"] = counts.get("deferred", 0) + int(deferred or 0)
                left = int(number) - int(deferred or 0)
                counts["remaining"] = counts.get("remaining", 0) + left
            else:
                counts[str(status)] = counts.get(str(status), 0) + int(number)
    editions = [EditionProgress(edition, **counts) for edition, counts in found.items()]
    return sorted(editions, key=lambda e: (-e.total, e.edition))
