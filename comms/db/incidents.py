"""What went wrong unattended: refused, failed or held scheduled sends, and which alerts went
out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.status import CLAIMABLE, CampaignStatus, DeliveryStatus
from comms.db.tables import (
    alerts_sent,
    bounce_events,
    campaigns,
    deliveries,
    held_sends,
    send_problems,
)


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


def settle_problems(
    engine: Engine, planned: dict[str, datetime], keep: frozenset[str]
) -> list[str]:
    """Forget the problems of sends that are no longer planned as they were: the issue moved
    to another `send_at`, went back to draft or is gone (issues in `keep`, whose file has
    errors, and issues whose campaign has started stay). The slugs forgotten."""
    p, c = send_problems.c, campaigns.c
    started = sa.exists().where(c.slug == p.slug)
    with engine.begin() as conn:
        rows = conn.execute(sa.select(p.slug, p.due_at).where(~started)).all()
        gone = [
            slug
            for slug, due_at in rows
            if slug not in keep
            and (slug not in planned or planned[slug].timestamp() != due_at.timestamp())
        ]
        if gone:
            conn.execute(sa.delete(send_problems).where(p.slug.in_(gone)))
    return gone


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


@dataclass(frozen=True)
class Held:
    """A send the staleness guard kept back (`comms.schedule.plan` records it)."""

    slug: str
    due_at: datetime
    held_at: datetime


def held_list(engine: Engine) -> list[Held]:
    """Held sends that no one has released yet (`comms send` starts a campaign: released)."""
    h = held_sends.c
    query = (
        sa.select(h.slug, h.due_at, h.held_at)
        .where(~sa.exists().where(campaigns.c.slug == h.slug))
        .order_by(h.due_at, h.slug)
    )
    with engine.connect() as conn:
        return [Held(**row._mapping) for row in conn.execute(query)]


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


@dataclass(frozen=True)
class Activity:
    """One campaign as the alert checks see it: counts, the latest move, what is due."""

    id: int
    slug: str
    status: str
    updated_at: datetime
    counts: dict[str, int]
    #: When a delivery or the campaign itself last changed.
    last_move: datetime
    #: Unsettled deliveries whose time has come (or that a run holds).
    due: int
    #: Bounce reports and complaints by kind (`hard`, `soft`, `complaint`, `unsubscribe`).
    feedback: dict[str, int]


def campaign_activity(engine: Engine, now: datetime, since: datetime) -> list[Activity]:
    """Every campaign that is unfinished or changed after `since`, with three aggregate
    queries (counts, due deliveries, feedback), whatever the number of deliveries."""
    c, d, b = campaigns.c, deliveries.c, bounce_events.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.id, c.slug, c.status, c.updated_at, c.created_at).where(
                sa.or_(c.status != CampaignStatus.DONE, c.updated_at >= since)
            )
        ).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        moved: dict[int, datetime] = {}
        for cid, status, n, last in conn.execute(
            sa.select(d.campaign_id, d.status, sa.func.count(), sa.func.max(d.updated_at))
            .where(d.campaign_id.in_(ids))
            .group_by(d.campaign_id, d.status)
        ):
            counts[cid][status] = int(n)
            last = _aware(last)
            if last is not None and (cid not in moved or last > moved[cid]):
                moved[cid] = last
        due_now = sa.or_(
            d.status == DeliveryStatus.SENDING,
            sa.and_(
                d.status.in_(CLAIMABLE),
                sa.or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
            ),
        )
        due: dict[int, int] = dict(
            conn.execute(
                sa.select(d.campaign_id, sa.func.count())
                .where(d.campaign_id.in_(ids), due_now)
                .group_by(d.campaign_id)
            ).all()
        )
        feedback: dict[int, dict[str, int]] = {i: {} for i in ids}
        for cid, kind, n in conn.execute(
            sa.select(b.campaign_id, b.kind, sa.func.count())
            .where(b.campaign_id.in_(ids))
            .group_by(b.campaign_id, b.kind)
        ):
            feedback[cid][kind] = int(n)
    found = []
    for row in rows:
        last_move = max(x for x in (row.updated_at, row.created_at, moved.get(row.id)) if x)
        found.append(
            Activity(
                row.id,
                row.slug,
                row.status,
                row.updated_at,
                counts[row.id],
                last_move,
                int(due.get(row.id, 0)),
                feedback[row.id],
            )  # fmt: skip
        )
    return found


def _aware(value: datetime | None) -> datetime | None:
    """A MAX() over a UTC column comes back without the column's type on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
