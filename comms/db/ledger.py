"""The send ledger: campaigns and one delivery row per (issue, subscriber); claims and outcomes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.db.engine import SuppressionProbe, driver_params, driver_statement, insert_ignore
from comms.db.tables import (
    FINAL_STATES,
    campaigns,
    consent,
    deliveries,
    subscribers,
    suppression,
)

#: Rows a claim may take: new ones and ones that wait for a retry.
CLAIMABLE = ("queued", "ambiguous")


@dataclass(frozen=True)
class Campaign:
    """One issue being (or having been) sent."""

    id: int
    slug: str
    content_hash: str
    status: str
    recipients: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery this run now owns, with what sending it needs of the subscriber."""

    delivery_id: int
    attempts: int  # before this one
    queued_at: datetime
    subscriber_id: int | None
    uid: str | None
    email: str | None
    name: str | None
    language: str
    subscriber_status: str | None
    key: str | None


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed delivery; `bounce` also ends the subscription."""

    delivery_id: int
    status: str
    message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    bounce: Claimed | None = None
    #: False when the message never left (a stopped run hands the row back untouched).
    attempted: bool = True


def target_clause(topics: Sequence[str], regions: Sequence[str]) -> sa.ColumnElement[bool]:
    """Who an issue goes to: everyone, or those who match each dimension the issue targets.

    A subscriber matches the topics of an issue with one of them or by choosing no topic at all
    (no choice = every topic); the same for regions. An issue that targets topics and regions
    goes to those who match both.
    """
    s = subscribers.c
    parts: list[sa.ColumnElement[bool]] = []
    for column, wanted in ((s.topics, topics), (s.regions, regions)):
        if wanted:
            parts.append(sa.or_(column == "", *(column.like(f"% {w} %") for w in wanted)))
    return sa.and_(*parts) if parts else sa.true()


_RECORD = (
    sa.update(deliveries)
    .where(deliveries.c.id == sa.bindparam("did"))
    .values(
        status=sa.bindparam("st"),
        message_id=sa.bindparam("mid"),
        last_error=sa.bindparam("err"),
        next_attempt_at=sa.bindparam("nxt"),
        attempts=deliveries.c.attempts + sa.bindparam("inc"),
        claimed_by=sa.null(),
        claimed_until=sa.null(),
        updated_at=sa.bindparam("now"),
    )
)


class LedgerWriter:
    """Records outcomes over one connection with a statement compiled once: the hot path.

    SQLAlchemy's per-call statement building and parameter processing cost more than SQLite's
    update itself; a send run commits many small groups, so they are done once here.
    """

    def __init__(self, ledger: Ledger, source: str) -> None:
        self.ledger = ledger
        self.source = source
        self.conn = ledger.engine.connect()
        self.sql, self.order = driver_statement(self.conn.dialect, _RECORD)
        convert = deliveries.c.updated_at.type.bind_processor(self.conn.dialect)
        self.convert: Callable[[datetime | None], Any] = convert or (lambda value: value)

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Write outcomes (and their bounces) in one transaction."""
        if not outcomes:
            return
        at, convert = self.convert(now), self.convert
        rows = [
            {
                "did": o.delivery_id,
                "st": o.status,
                "mid": o.message_id,
                "err": o.error,
                "nxt": None if o.next_attempt_at is None else convert(o.next_attempt_at),
                "inc": int(o.attempted),
                "now": at,
            }
            for o in outcomes
        ]
        params = driver_params(self.order, rows)
        bounces = [o for o in outcomes if o.bounce and o.bounce.subscriber_id and o.bounce.key]
        if not bounces:
            self._fast(params)
            return
        with self.conn.begin():
            self.conn.exec_driver_sql(self.sql, params)
            for o in bounces:
                assert o.bounce is not None and o.bounce.subscriber_id and o.bounce.key
                self._bounce(o.bounce.subscriber_id, o.bounce.key, o.error, now)

    def _fast(self, params: list[Any]) -> None:
        """The common case in plain DB-API calls: even opening a transaction through the
        engine costs more than the update itself."""
        raw = self.conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            if self.conn.dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    cursor.executemany(self.sql, params)
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            else:
                try:
                    cursor.executemany(self.sql, params)
                except BaseException:
                    raw.rollback()
                    raise
                raw.commit()
        finally:
            cursor.close()

    def _bounce(self, sid: int, key: str, error: str | None, now: datetime) -> None:
        self.ledger.end_subscription(self.conn, sid, key, "bounced", "bounced", now)
        self.conn.execute(
            sa.insert(consent).values(
                subscriber_id=sid,
                action="bounce",
                at=now,
                source=self.source,
                channel="smtp",
                note=error,
            )
        )

    def close(self) -> None:
        """Give the connection back."""
        self.conn.close()


class Ledger:
    """Campaign and delivery operations; `Store` adds subscribers on top."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reading(self) -> Connection:
        """A connection for reads only: on SQLite its transactions do not take the write lock."""
        return self.engine.connect().execution_options(comms_read=True)

    # -- subscribers as the ledger needs them ------------------------------------------------

    def end_subscription(
        self, conn: Connection, sid: int, key: str, status: str, reason: str, at: datetime
    ) -> None:
        """Set a final subscriber state and add the address to the suppression list."""
        values: dict[str, Any] = {"status": status, "updated_at": at, "unsubscribed_at": at}
        conn.execute(sa.update(subscribers).where(subscribers.c.id == sid).values(values))
        conn.execute(insert_ignore(conn, suppression).values(key=key, reason=reason, created_at=at))

    def deliveries_of(self, conn: Connection, sid: int) -> list[dict[str, Any]]:
        """A subscriber's send history."""
        d = deliveries.c
        rows = conn.execute(
            sa.select(campaigns.c.slug, d.status, d.attempts, d.updated_at, d.message_id)
            .join(campaigns, campaigns.c.id == d.campaign_id)
            .where(d.subscriber_id == sid)
            .order_by(d.id)
        )
        return [dict(row._mapping) for row in rows]

    def unlink_deliveries(self, conn: Connection, sid: int, at: datetime) -> int:
        """Cut a person's deliveries loose before erasure; pending ones will never be sent."""
        d = deliveries.c
        conn.execute(
            sa.update(deliveries)
            .where(d.subscriber_id == sid, d.status.not_in(FINAL_STATES))
            .values(status="skipped", updated_at=at, claimed_by=None)
        )
        # Server replies often quote the address: they go with the person.
        result = conn.execute(
            sa.update(deliveries).where(d.subscriber_id == sid).values(last_error=None)
        )
        return int(result.rowcount)

    # -- campaigns -------------------------------------------------------------------------

    def campaign(self, slug: str) -> Campaign | None:
        """The campaign of an issue, if sending ever started."""
        with self.reading() as conn:
            row = conn.execute(sa.select(campaigns).where(campaigns.c.slug == slug)).first()
        return Campaign(**row._mapping) if row else None

    def campaigns(self) -> list[Campaign]:
        """Every campaign, newest first."""
        with self.reading() as conn:
            rows = conn.execute(sa.select(campaigns).order_by(campaigns.c.id.desc()))
            return [Campaign(**row._mapping) for row in rows]

    def _recipients(self, topics: Sequence[str], regions: Sequence[str]) -> sa.Select[Any]:
        s = subscribers.c
        return sa.select(s.id).where(
            s.status == "active",
            target_clause(topics, regions),
            ~sa.exists().where(suppression.c.key == s.suppression_key),
        )

    def count_recipients(self, topics: Sequence[str], regions: Sequence[str]) -> int:
        """How many subscribers an issue would go to now."""
        query = sa.select(sa.func.count()).select_from(self._recipients(topics, regions).subquery())
        with self.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def enqueue(
        self,
        slug: str,
        content_hash: str,
        topics: Sequence[str],
        regions: Sequence[str],
        now: datetime,
    ) -> Campaign:
        """Start a campaign: snapshot every recipient into a queued delivery, in one transaction."""
        with self.engine.begin() as conn:
            cid = conn.execute(
                sa.insert(campaigns)
                .values(
                    slug=slug,
                    content_hash=content_hash,
                    status="sending",
                    recipients=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(campaigns.c.id)
            ).scalar_one()
            when = sa.literal(now, deliveries.c.queued_at.type)
            source = self._recipients(topics, regions).add_columns(
                sa.literal(cid), sa.literal("queued"), sa.literal(0), when
            )
            columns = ["subscriber_id", "campaign_id", "status", "attempts", "queued_at"]
            conn.execute(sa.insert(deliveries).from_select(columns, source))
            count = conn.execute(
                sa.select(sa.func.count()).where(deliveries.c.campaign_id == cid)
            ).scalar_one()
            conn.execute(sa.update(campaigns).where(campaigns.c.id == cid).values(recipients=count))
        found = self.campaign(slug)
        assert found is not None
        return found

    def update_campaign(self, cid: int, now: datetime, **values: Any) -> None:
        """Change a campaign's status or content hash."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(campaigns).where(campaigns.c.id == cid).values(updated_at=now, **values)
            )

    # -- claiming and recording ------------------------------------------------------------

    def release_orphans(self, cid: int, abandoned: Callable[[str], bool], now: datetime) -> int:
        """Requeue rows a crashed run left in `sending` (its owner is gone or its lease ran out)."""
        d = deliveries.c
        with self.engine.begin() as conn:
            owners = conn.execute(
                sa.select(d.claimed_by, sa.func.min(d.claimed_until))
                .where(d.campaign_id == cid, d.status == "sending")
                .group_by(d.claimed_by)
            ).all()
            gone = [o for o, until in owners if o is None or until <= now or abandoned(o)]
            if not gone:
                return 0
            result = conn.execute(
                sa.update(deliveries)
                .where(d.campaign_id == cid, d.status == "sending")
                .where(sa.or_(d.claimed_by.in_([g for g in gone if g]), d.claimed_by.is_(None)))
                .values(status="queued", claimed_by=None, claimed_until=None, updated_at=now)
            )
            return int(result.rowcount)

    def claim(
        self, cid: int, owner: str, limit: int, now: datetime, until: datetime
    ) -> list[Claimed]:
        """Take up to `limit` due rows for this run (SKIP LOCKED where the database has it)."""
        d = deliveries.c
        pick = (
            sa.select(d.id)
            .where(d.campaign_id == cid, d.status.in_(CLAIMABLE))
            .where(sa.or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now))
            .order_by(d.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(deliveries)
                .where(d.id.in_(pick))
                .values(
                    status="sending",
                    claimed_by=owner,
                    claimed_until=until,
                    updated_at=now,
                )
                .returning(d.id, d.subscriber_id, d.attempts, d.queued_at)
            ).all()
            s = subscribers.c
            people = {
                row.id: row
                for row in conn.execute(
                    sa.select(
                        s.id, s.uid, s.email, s.name, s.language, s.status, s.suppression_key
                    ).where(s.id.in_([t.subscriber_id for t in taken if t.subscriber_id]))
                )
            }
        out = []
        for row in sorted(taken, key=lambda t: t.id):
            p = people.get(row.subscriber_id)
            out.append(
                Claimed(
                    delivery_id=row.id,
                    attempts=row.attempts,
                    queued_at=row.queued_at,
                    subscriber_id=row.subscriber_id,
                    uid=p.uid if p else None,
                    email=p.email if p else None,
                    name=p.name if p else None,
                    language=p.language if p else "de",
                    subscriber_status=p.status if p else None,
                    key=p.suppression_key if p else None,
                )
            )
        return out

    def record(self, outcomes: Sequence[Outcome], now: datetime, source: str) -> None:
        """Write many outcomes in one transaction."""
        writer = LedgerWriter(self, source)
        try:
            writer.write(outcomes, now)
        finally:
            writer.close()

    def counts(self, cid: int) -> dict[str, int]:
        """Deliveries of a campaign by status."""
        d = deliveries.c
        with self.reading() as conn:
            rows = conn.execute(
                sa.select(d.status, sa.func.count()).where(d.campaign_id == cid).group_by(d.status)
            )
            return {status: int(n) for status, n in rows}

    def next_attempt(self, cid: int) -> datetime | None:
        """When the earliest waiting retry of a campaign is due."""
        d = deliveries.c
        with self.reading() as conn:
            return conn.execute(
                sa.select(sa.func.min(d.next_attempt_at)).where(
                    d.campaign_id == cid, d.status.in_(CLAIMABLE)
                )
            ).scalar()

    def recent_errors(self, cid: int, limit: int = 10) -> list[dict[str, Any]]:
        """The latest rows that carry an error, newest first."""
        d = deliveries.c
        with self.reading() as conn:
            rows = conn.execute(
                sa.select(subscribers.c.email, d.status, d.attempts, d.last_error, d.updated_at)
                .outerjoin(subscribers, subscribers.c.id == d.subscriber_id)
                .where(d.campaign_id == cid, d.last_error.is_not(None))
                .order_by(d.updated_at.desc(), d.id.desc())
                .limit(limit)
            )
            return [dict(row._mapping) for row in rows]

    def due_campaigns(self, now: datetime) -> list[str]:
        """Slugs of campaigns with retries due at `now`."""
        d = deliveries.c
        with self.reading() as conn:
            rows = conn.execute(
                sa.select(campaigns.c.slug)
                .where(campaigns.c.status.in_(("sending", "waiting")))
                .where(
                    sa.exists().where(
                        d.campaign_id == campaigns.c.id,
                        d.status.in_(CLAIMABLE),
                        sa.or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
                    )
                )
                .order_by(campaigns.c.id)
            )
            return list(rows.scalars())

    def suppression_probe(self) -> SuppressionProbe:
        """A lookup for one worker thread; close it when the thread ends."""
        return SuppressionProbe(self.engine)
