"""What `/metrics` reads at scrape time: a few aggregate queries whose cost follows the rows
that are not settled, not the size of the ledger.

A campaign's sent count is its recipients minus its other deliveries (every delivery row is
made when the campaign starts, `Ledger.start`, and none is deleted: erasure keeps the row), so
the ledger's index `(campaign_id, status, …)` answers each campaign with a few small range
counts. Every host reads the same database, so every host reports the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.status import WAITING, CampaignStatus, DeliveryStatus
from comms.db.tables import (
    bounce_events,
    campaigns,
    consent,
    deliveries,
    meta,
    scheduler_lease,
    subscribers,
)

#: The `meta` key of the scheduler's last successful refresh.
LAST_REFRESH = "last_refresh"
#: The statuses counted row by row; `sent`, the bulk of a finished campaign, is derived.
COUNTED = tuple(s for s in DeliveryStatus if s != DeliveryStatus.SENT)
#: The window of a campaign's send rate.
RATE_WINDOW = timedelta(seconds=60)
#: The window of the sign-up and confirmation counts.
CONSENT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class CampaignGauge:
    """One campaign at scrape time."""

    slug: str
    status: str
    counts: dict[str, int]
    #: Messages sent within the last `RATE_WINDOW`, per second (0 unless it is sending).
    rate: float
    #: Deliveries not yet settled (queued, retrying, being sent).
    depth: int
    #: Seconds the oldest unsettled delivery has waited (all are queued at the start).
    oldest: float


@dataclass(frozen=True)
class Gauges:
    """Everything `/metrics` shows."""

    campaigns: list[CampaignGauge]
    subscribers: dict[str, int]
    #: Consent events of the last `CONSENT_WINDOW` by action (`request`: sign-ups).
    consent: dict[str, int]
    bounces: dict[str, int]
    lease_owner: str | None
    lease_expires: datetime | None
    last_refresh: datetime | None


class Finished:
    """The counts of finished campaigns, which never change: read once per process (keyed
    by the campaign and its last change, so a campaign that moves again is read again)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, datetime], dict[str, int]] = {}

    def get(self, cid: int, updated_at: datetime) -> dict[str, int] | None:
        """The remembered counts, if any."""
        return self._counts.get((cid, updated_at))

    def keep(self, cid: int, updated_at: datetime, counts: dict[str, int]) -> None:
        """Remember the counts of a finished campaign."""
        self._counts[(cid, updated_at)] = counts


def read_gauges(engine: Engine, now: datetime, finished: Finished | None = None) -> Gauges:
    """Read every gauge in one connection; `finished` spares re-counting done campaigns."""
    c, d = campaigns.c, deliveries.c
    finished = finished or Finished()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.id, c.slug, c.status, c.recipients, c.created_at, c.updated_at)
        ).all()
        known = {row.id: finished.get(row.id, row.updated_at) for row in rows}
        others: dict[int, dict[str, int]] = {cid: {} for cid, n in known.items() if n is None}
        if others:
            for cid, status, n in conn.execute(
                sa.select(d.campaign_id, d.status, sa.func.count())
                .where(d.campaign_id.in_(list(others)), d.status.in_(COUNTED))
                .group_by(d.campaign_id, d.status)
            ):
                others[cid][status] = int(n)
        found = []
        for row in rows:
            counts = known[row.id]
            if counts is None:
                counts = {str(s): others[row.id].get(s, 0) for s in DeliveryStatus}
                counts[DeliveryStatus.SENT] = max(0, row.recipients - sum(others[row.id].values()))
                if row.status == CampaignStatus.DONE:
                    finished.keep(row.id, row.updated_at, counts)
            depth = sum(counts[s] for s in WAITING)
            rate = 0.0
            if row.status == CampaignStatus.SENDING:
                recent = conn.execute(
                    sa.select(sa.func.count()).where(
                        d.campaign_id == row.id,
                        d.status == DeliveryStatus.SENT,
                        d.updated_at >= now - RATE_WINDOW,
                    )
                ).scalar_one()
                rate = recent / RATE_WINDOW.total_seconds()
            oldest = (now - row.created_at).total_seconds() if depth else 0.0
            found.append(CampaignGauge(row.slug, row.status, counts, rate, depth, oldest))
        people = _grouped(conn, subscribers.c.status)
        actions = {
            str(action): int(n)
            for action, n in conn.execute(
                sa.select(consent.c.action, sa.func.count())
                .where(consent.c.action.in_(("request", "confirm")))
                .where(consent.c.at >= now - CONSENT_WINDOW)
                .group_by(consent.c.action)
            )
        }
        bounces = _grouped(conn, bounce_events.c.kind)
        lease = conn.execute(
            sa.select(scheduler_lease.c.owner, scheduler_lease.c.expires_at).where(
                scheduler_lease.c.name == "scheduler", scheduler_lease.c.expires_at > now
            )
        ).first()
        refreshed = conn.execute(sa.select(meta.c.value).where(meta.c.key == LAST_REFRESH)).first()
    return Gauges(
        found,
        people,
        actions,
        bounces,
        lease.owner if lease else None,
        lease.expires_at if lease else None,
        datetime.fromisoformat(refreshed.value) if refreshed else None,
    )


def _grouped(conn: sa.Connection, column: sa.Column[str]) -> dict[str, int]:
    return {
        str(value): int(n)
        for value, n in conn.execute(sa.select(column, sa.func.count()).group_by(column))
    }


def record_refresh(engine: Engine, at: datetime) -> None:
    """Remember the scheduler's last successful refresh (`comms_last_refresh_timestamp`)."""
    value = at.isoformat()
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(meta).where(meta.c.key == LAST_REFRESH).values(value=value)
        ).rowcount
        if not done:
            conn.execute(sa.insert(meta).values(key=LAST_REFRESH, value=value))
