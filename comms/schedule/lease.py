"""The scheduler lease: one database row names the process that runs the scheduler.

The owner renews it (heartbeat) every quarter of `schedule.lease_seconds`. Another process
takes it over when it has expired, or at once when its owner was a process on this machine
that no longer exists. Every change is a compare-and-swap, so two processes racing for a free
lease cannot both win, on SQLite or on PostgreSQL (docs/requirements.md R5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.core.clock import now_utc
from comms.core.process import is_abandoned, owner_id
from comms.db.tables import scheduler_lease

NAME = "scheduler"


@dataclass(frozen=True)
class Holder:
    """Who holds the lease and until when."""

    owner: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


def holder(engine: Engine) -> Holder | None:
    """The current lease row, if any (it may have expired)."""
    t = scheduler_lease.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(t.owner, t.acquired_at, t.heartbeat_at, t.expires_at).where(t.name == NAME)
        ).first()
    return Holder(**row._mapping) if row else None


class Lease:
    """This process's claim on the scheduler lease."""

    def __init__(
        self,
        engine: Engine,
        seconds: float,
        owner: str | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.engine = engine
        self.length = timedelta(seconds=seconds)
        self.owner = owner or owner_id()
        self.clock = clock

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, abandoned or already ours."""
        now = self.clock()
        current = holder(self.engine)
        values = {
            "owner": self.owner,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + self.length,
        }
        t = scheduler_lease.c
        if current is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(scheduler_lease).values(name=NAME, **values))
            except sa.exc.IntegrityError:
                return False  # another process inserted it first
            return True
        free = (
            current.owner == self.owner or current.expires_at <= now or is_abandoned(current.owner)
        )
        if not free:
            return False
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(scheduler_lease)
                .where(
                    t.name == NAME,
                    t.owner == current.owner,
                    t.expires_at == current.expires_at,
                )
                .values(**values)
            )
        return result.rowcount == 1

    def renew(self) -> bool:
        """Extend the lease (the heartbeat); False when another process has taken it."""
        now = self.clock()
        t = scheduler_lease.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(scheduler_lease)
                .where(t.name == NAME, t.owner == self.owner)
                .values(heartbeat_at=now, expires_at=now + self.length)
            )
        return result.rowcount == 1

    def release(self) -> None:
        """Give the lease up so that the next process need not wait for it to expire."""
        t = scheduler_lease.c
        with self.engine.begin() as conn:
            conn.execute(sa.delete(scheduler_lease).where(t.name == NAME, t.owner == self.owner))
