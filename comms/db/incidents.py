"""What went wrong unattended: refused or failed scheduled sends, and which alerts went out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.tables import alerts_sent, campaigns, send_problems


@dataclass(frozen=True)
class SendProblem:
    """A scheduled send that did not go out: `refused` by the send rules, or `failed`."""

    slug: str
    kind: str
    reason: str
    due_at: datetime
    at: datetime


def record_problem(
    engine: Engine, slug: str, kind: str, reason: str, due_at: datetime, at: datetime
) -> None:
    """Record (or replace) the latest problem of one issue's scheduled send."""
    with engine.begin() as conn:
        conn.execute(sa.delete(send_problems).where(send_problems.c.slug == slug))
        conn.execute(
            sa.insert(send_problems).values(
                slug=slug, kind=kind, reason=reason, due_at=due_at, at=at
            )
        )


def clear_problem(engine: Engine, slug: str) -> None:
    """Forget an issue's problem (its scheduled send went out)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(send_problems).where(send_problems.c.slug == slug))


def problem_list(engine: Engine) -> list[SendProblem]:
    """The problems nobody has dealt with yet: no campaign of the issue moved after them (a
    `comms send` or a retry that came later settles the matter)."""
    p, c = send_problems.c, campaigns.c
    later = sa.exists().where(c.slug == p.slug, c.updated_at > p.at)
    query = sa.select(p.slug, p.kind, p.reason, p.due_at, p.at).where(~later).order_by(p.at)
    with engine.connect() as conn:
        return [SendProblem(**row._mapping) for row in conn.execute(query)]


def first_alert(engine: Engine, key: str, kind: str, at: datetime) -> bool:
    """Record the alert `key`; True only for the first caller, on any host (the row is the
    lock: the primary key refuses a second one)."""
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(alerts_sent).values(key=key[:200], kind=kind, at=at))
    except sa.exc.IntegrityError:
        return False
    return True


def forget_alert(engine: Engine, key: str) -> None:
    """Drop an alert's record, so that it may be sent again (it could not be delivered)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(alerts_sent).where(alerts_sent.c.key == key[:200]))
