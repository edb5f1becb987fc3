"""Anonymous daily counters (`daily_counts`): one number per kind, issue, item and day."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import Selectable

from comms.db.engine import dialect_insert
from comms.db.tables import campaigns, daily_counts

#: Longest link id or edition a counter keeps (the column's width).
ITEM_LENGTH = 64


def _upsert(conn: Connection, source: Selectable) -> int:
    c = daily_counts.c
    statement = (
        dialect_insert(conn, daily_counts)
        .from_select(["kind", "subject", "item", "day", "count"], source)
        .on_conflict_do_update(
            index_elements=["kind", "subject", "item", "day"], set_={"count": c.count + 1}
        )
    )
    return int(conn.execute(statement).rowcount or 0)


def count_for_issue(conn: Connection, kind: str, slug: str, item: str, day: date) -> bool:
    """Add one to an issue's counter for `day`, in the caller's transaction; False (nothing
    counted) when no campaign of that slug exists, so a made-up URL leaves no row behind."""
    if len(item) > ITEM_LENGTH:
        return False
    when = sa.literal(day, sa.Date)
    source = sa.select(
        sa.literal(kind), campaigns.c.slug, sa.literal(item), when, sa.literal(1)
    ).where(campaigns.c.slug == slug)
    return _upsert(conn, source) > 0


def count_issue_event(engine: Engine, kind: str, slug: str, item: str, day: date) -> bool:
    """`count_for_issue` in a transaction of its own."""
    with engine.begin() as conn:
        return count_for_issue(conn, kind, slug, item, day)


def count_audience(conn: Connection, action: str, day: date, amount: int = 1) -> None:
    """Count `amount` consent-ledger actions (`request`, `confirm`, …, `erasure`) on `day`, in
    the transaction that records them: the history outlives the people's rows."""
    if amount <= 0:
        return
    c = daily_counts.c
    row = {"kind": "audience", "subject": action, "item": "", "day": day, "count": amount}
    conn.execute(
        dialect_insert(conn, daily_counts)
        .values(row)
        .on_conflict_do_update(
            index_elements=["kind", "subject", "item", "day"], set_={"count": c.count + amount}
        )
    )
