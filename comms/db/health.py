"""What `/healthz` and `comms status --health` report: the database, the scheduler's holder,
the live senders per campaign, and campaigns that stalled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.core.process import is_abandoned
from comms.db.status import CLAIMABLE, DeliveryStatus
from comms.db.tables import UTCDateTime, campaigns, deliveries, scheduler_lease


@dataclass(frozen=True)
class SchedulerState:
    """The scheduler lease: who holds it, how old its heartbeat is, whether it is live."""

    owner: str
    heartbeat_age: float
    alive: bool


@dataclass(frozen=True)
class Sender:
    """A live send run of a campaign: its owner and the rows it holds."""

    owner: str
    claimed: int


@dataclass(frozen=True)
class Stall:
    """A campaign with work claimed or due now whose deliveries did not change for long."""

    issue: str
    claimed: int
    due: int
    idle_minutes: float


@dataclass
class Health:
    """The whole report; `ok` is False when something needs a person (503)."""

    database: bool
    scheduler: SchedulerState | None = None
    senders: dict[str, list[Sender]] = field(default_factory=dict)
    stalled: list[Stall] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """What is wrong, in words; empty when all is well."""
        if not self.database:
            return ["the database does not answer"]
        found = []
        if self.scheduler is not None and not self.scheduler.alive:
            found.append(
                f"the scheduler's lease ran out ({self.scheduler.owner}, last heartbeat "
                f"{self.scheduler.heartbeat_age:.0f} s ago) and nobody took it over"
            )
        for stall in self.stalled:
            found.append(
                f"campaign {stall.issue} stalled: {stall.claimed} claimed and {stall.due} due, "
                f"no delivery changed for {stall.idle_minutes:.0f} min"
            )
        return found

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        """The JSON of `/healthz`: `status` and `database` as always, then the rest."""
        if not self.database:
            return {"status": "error", "database": "unreachable"}
        scheduler = None
        if self.scheduler is not None:
            scheduler = {
                "owner": self.scheduler.owner,
                "heartbeat_age_seconds": round(self.scheduler.heartbeat_age, 1),
                "alive": self.scheduler.alive,
            }
        return {
            "status": "ok" if self.ok else "error",
            "database": "ok",
            "scheduler": scheduler,
            "senders": {
                issue: [{"owner": s.owner, "claimed": s.claimed} for s in runs]
                for issue, runs in self.senders.items()
            },
            "stalled": [
                {
                    "issue": s.issue,
                    "claimed": s.claimed,
                    "due": s.due,
                    "idle_minutes": round(s.idle_minutes, 1),
                }
                for s in self.stalled
            ],
            "problems": self.problems,
        }


def read_health(engine: Engine, now: datetime, stall_after: timedelta) -> Health:
    """Ask the database; a database that does not answer is the report's first problem."""
    try:
        with engine.connect() as conn:
            return _read(conn, now, stall_after)
    except sa.exc.SQLAlchemyError:
        return Health(database=False)


def _read(conn: sa.Connection, now: datetime, stall_after: timedelta) -> Health:
    health = Health(database=True)
    t = scheduler_lease.c
    lease = conn.execute(sa.select(t.owner, t.heartbeat_at, t.expires_at)).first()
    if lease is not None:
        alive = lease.expires_at > now and not is_abandoned(lease.owner)
        age = (now - lease.heartbeat_at).total_seconds()
        health.scheduler = SchedulerState(lease.owner, age, alive)
    d, c = deliveries.c, campaigns.c
    live = conn.execute(
        sa.select(c.slug, d.claimed_by, sa.func.count())
        .join(campaigns, campaigns.c.id == d.campaign_id)
        .where(d.status == DeliveryStatus.SENDING, d.claimed_until > now)
        .group_by(c.slug, d.claimed_by)
        .order_by(c.slug, d.claimed_by)
    ).all()
    for slug, owner, count in live:
        if owner is not None and not is_abandoned(owner):
            health.senders.setdefault(slug, []).append(Sender(owner, count))
    claimed = sa.func.sum(sa.case((d.status == DeliveryStatus.SENDING, 1), else_=0))
    due = sa.func.sum(
        sa.case(
            (
                sa.and_(
                    d.status.in_(CLAIMABLE),
                    sa.or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
                ),
                1,
            ),
            else_=0,
        )
    )
    changed = sa.func.max(sa.func.coalesce(d.updated_at, d.queued_at), type_=UTCDateTime)
    rows = conn.execute(
        sa.select(c.slug, claimed, due, changed)
        .join(campaigns, campaigns.c.id == d.campaign_id)
        .group_by(c.slug)
        .order_by(c.slug)
    ).all()
    for slug, held, waiting, last in rows:
        if not (held or waiting) or last is None:
            continue
        idle = now - last
        if idle >= stall_after:
            minutes = idle.total_seconds() / 60
            health.stalled.append(Stall(slug, int(held or 0), int(waiting or 0), minutes))
    return health
