"""State every process on one database shares: rate-limit hits and the send budget (what
publishing reads and keeps there is comms.db.publishing's)."""

from __future__ import annotations

import random

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.core.keys import Purpose, keyed_hash
from comms.db.engine import insert_ignore
from comms.db.tables import rate_hits, send_budget

#: One hit in so many also deletes every expired row of its scope (keys nobody hits again).
SWEEP_ONE_IN = 200
#: The sweep's own generator: the module-level one is shared state (tests seed it, Hypothesis
#: watches it while it draws), and a web request's sweep should not move it.
_SWEEP = random.Random()


def _serialise(conn: Connection, scope: str, key: str) -> None:
    """Count and insert of one key must not interleave across processes.

    SQLite's writing transactions are serial already (BEGIN IMMEDIATE); on PostgreSQL a
    transaction-scoped advisory lock on the key does it without locking the table.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{scope}:{key}"))))


class Hits:
    """Sliding-window limits counted in the database: every server process sees every hit."""

    def __init__(self, engine: Engine, secret: str) -> None:
        self.engine = engine
        self._secret = secret

    def key(self, scope: Purpose, value: str) -> str:
        """What is stored for `value` (an IP or address): its keyed hash, not the value itself."""
        return keyed_hash(self._secret, scope, value)[:32]

    def hit(self, scope: Purpose, value: str, limit: int, window: float, now: float) -> float:
        """Count one hit of `value` at `now` (epoch seconds); 0 when allowed, else the seconds
        until the next one is allowed. A refused hit is not counted."""
        key, name = self.key(scope, value), scope.value
        h = rate_hits.c
        with self.engine.begin() as conn:
            _serialise(conn, name, key)
            since = now - window
            conn.execute(sa.delete(rate_hits).where(h.scope == name, h.key == key, h.at <= since))
            if _SWEEP.randrange(SWEEP_ONE_IN) == 0:
                conn.execute(sa.delete(rate_hits).where(h.scope == name, h.at <= since))
            count, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(h.at)).where(h.scope == name, h.key == key)
            ).one()
            if count >= limit:
                return max(float(oldest) + window - now, 1.0)
            conn.execute(sa.insert(rate_hits).values(scope=name, key=key, at=now))
        return 0.0


def reserve(engine: Engine, cid: int, count: int, rate: float, now: float) -> float:
    """Reserve `count` messages at `rate` per second of campaign `cid`'s one budget.

    Returns when the first of them may start (epoch seconds); the rest follow 1/rate apart.
    Every worker of the campaign moves the same row on, so together they keep to `rate`.
    """
    b = send_budget.c
    span = count / rate
    with engine.begin() as conn:
        conn.execute(insert_ignore(conn, send_budget).values(campaign_id=cid, next_at=now))
        start = sa.case((b.next_at > now, b.next_at), else_=sa.literal(now, sa.Float))
        moved = conn.execute(
            sa.update(send_budget)
            .where(b.campaign_id == cid)
            .values(next_at=start + span)
            .returning(b.next_at)
        ).scalar_one()
    return float(moved) - span
