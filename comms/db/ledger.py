"""The send ledger: campaigns and one delivery row per (issue, subscriber); claims and outcomes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.core.languages import Editions
from comms.db.engine import SuppressionProbe, driver_conversions, insert_ignore, read_only
from comms.db.outcomes import BounceSink, Claimed, LedgerWriter
from comms.db.shared import reserve
from comms.db.status import (
    CLAIMABLE,
    FINAL,
    RETRYING,
    CampaignStatus,
    DeliveryStatus,
    SubscriberStatus,
)
from comms.db.tables import campaign_reach, campaigns, deliveries, subscribers, suppression
from comms.db.targets import edition_column, target_clause


def _pick(status: str) -> str:
    # One status per scan: the rows come off ix_deliveries_claim in id order, so the scan
    # stops at the limit; a row another worker holds is passed over, not waited for.
    return (
        "SELECT id FROM (SELECT id FROM deliveries"
        f" WHERE campaign_id = %(cid)s AND status = '{status}'"
        " AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)"
        " ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS due"
    )


#: A claim on PostgreSQL: the due rows (retries that are due first, by status name), taken
#: by primary key (`= ANY`: an index lookup per row, never a scan of the table), returned
#: with their subscribers. The LIMIT over the scans locks no row beyond the limit.
_CLAIM_POSTGRESQL = f"""
WITH taken AS (
    UPDATE deliveries
    SET status = '{DeliveryStatus.SENDING}', claimed_by = %(owner)s,
        claimed_until = %(until)s, updated_at = %(now)s
    WHERE id = ANY(ARRAY({" UNION ALL ".join(_pick(s) for s in sorted(CLAIMABLE))} LIMIT %(limit)s))
    RETURNING id, subscriber_id, attempts, queued_at, edition
)
SELECT t.id, t.subscriber_id, t.attempts, t.queued_at, t.edition, s.id, s.uid, s.email, s.name,
    s.language, s.status, s.suppression_key, s.link_version, s.regions, s.topics
FROM taken AS t LEFT JOIN subscribers AS s ON s.id = t.subscriber_id
ORDER BY t.id
"""


def _same(value: Any) -> Any:
    return value


def _due_sqlite(status: str) -> str:
    # As `_pick`: the first due rows of one status off ix_deliveries_claim, in id order.
    return (
        "SELECT id FROM (SELECT id FROM deliveries"
        f" WHERE campaign_id = :cid AND status = '{status}'"
        " AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
        " ORDER BY id LIMIT :limit)"
    )


#: A claim on SQLite, inside a writing (IMMEDIATE) transaction: the due rows (retries that are
#: due first, by status name), marked as this run's.
_CLAIM_SQLITE = f"""
UPDATE deliveries
SET status = '{DeliveryStatus.SENDING}', claimed_by = :owner, claimed_until = :until,
    updated_at = :now
WHERE id IN ({" UNION ALL ".join(_due_sqlite(s) for s in sorted(CLAIMABLE))} LIMIT :limit)
RETURNING id
"""
#: What sending the claimed rows (`ids`, a JSON list) needs, with their subscribers (all None
#: for an erased one), in id order.
_CLAIMED_SQLITE = """
SELECT d.id, d.subscriber_id, d.attempts, d.queued_at, d.edition, s.id, s.uid, s.email, s.name,
    s.language, s.status, s.suppression_key, s.link_version, s.regions, s.topics
FROM deliveries AS d LEFT JOIN subscribers AS s ON s.id = d.subscriber_id
WHERE d.id IN (SELECT value FROM json_each(:ids))
ORDER BY d.id
"""


@dataclass(frozen=True)
class Campaign:
    """One issue being (or having been) sent."""

    id: int
    slug: str
    content_hash: str
    status: CampaignStatus
    recipients: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Campaign:
        """Build from a `campaigns` row."""
        return cls(**{**row._mapping, "status": CampaignStatus(row.status)})


class Ledger:
    """Campaigns and deliveries: the only code that writes them; subscribers it only reads.

    A bounce ends a subscription in the transaction of its outcome; `bounces` (the subscriber
    store) does that part.
    """

    def __init__(self, engine: Engine, bounces: BounceSink) -> None:
        self.engine = engine
        self.bounces = bounces
        # A timestamp as the dialect stores it, and back (UTCDateTime's own conversions); a
        # claim's rows share a few queued_at stamps, each parsed once.
        stamp, parse = driver_conversions(deliveries.c.queued_at.type, engine.dialect)
        self._stamp: Callable[[datetime], Any] = stamp or _same
        self._parse = functools.lru_cache(maxsize=256)(parse or _same)

    def reading(self) -> Connection:
        """A connection for reads only: on SQLite its transactions do not take the write lock."""
        return read_only(self.engine)

    # -- one subscriber's deliveries (access and erasure requests) --------------------------

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
            .where(d.subscriber_id == sid, d.status.not_in(FINAL))
            .values(status=DeliveryStatus.SKIPPED, updated_at=at, claimed_by=None)
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
        return Campaign.from_row(row) if row else None

    def campaigns(self) -> list[Campaign]:
        """Every campaign, newest first."""
        with self.reading() as conn:
            rows = conn.execute(sa.select(campaigns).order_by(campaigns.c.id.desc()))
            return [Campaign.from_row(row) for row in rows]

    def _recipients(self, topics: Sequence[str], regions: Sequence[str]) -> sa.Select[Any]:
        s = subscribers.c
        return sa.select(s.id).where(
            s.status == SubscriberStatus.ACTIVE,
            target_clause(topics, regions),
            ~sa.exists().where(suppression.c.key == s.suppression_key),
        )

    def recipients_by_edition(
        self, topics: Sequence[str], regions: Sequence[str], editions: Editions
    ) -> dict[str, int]:
        """How many subscribers would get each edition of an issue now."""
        inner = self._recipients(topics, regions).add_columns(edition_column(editions).label("e"))
        rows = inner.subquery()
        query = sa.select(rows.c.e, sa.func.count()).group_by(rows.c.e)
        with self.reading() as conn:
            return {str(e): int(n) for e, n in conn.execute(query)}

    def deliveries_by_edition(self, cid: int, statuses: Iterable[str]) -> dict[str, int]:
        """A campaign's deliveries in `statuses` per recorded edition ('' where none is)."""
        d = deliveries.c
        query = (
            sa.select(d.edition, sa.func.count())
            .where(d.campaign_id == cid, d.status.in_(list(statuses)))
            .group_by(d.edition)
        )
        with self.reading() as conn:
            return {str(e or ""): int(n) for e, n in conn.execute(query)}

    def recipients_by_choice(
        self, topics: Sequence[str], regions: Sequence[str]
    ) -> dict[tuple[str, str], int]:
        """How many subscribers an issue would go to now, per stored (regions, topics) choice."""
        s = subscribers.c
        inner = self._recipients(topics, regions).add_columns(
            s.regions.label("r"), s.topics.label("t")
        )
        rows = inner.subquery()
        query = sa.select(rows.c.r, rows.c.t, sa.func.count()).group_by(rows.c.r, rows.c.t)
        with self.reading() as conn:
            return {(str(r or ""), str(t or "")): int(n) for r, t, n in conn.execute(query)}

    def count_recipients(self, topics: Sequence[str], regions: Sequence[str]) -> int:
        """How many subscribers an issue would go to now."""
        query = sa.select(sa.func.count()).select_from(self._recipients(topics, regions).subquery())
        with self.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def start(
        self,
        slug: str,
        content_hash: str,
        topics: Sequence[str],
        regions: Sequence[str],
        now: datetime,
        editions: Editions | None = None,
    ) -> tuple[Campaign, bool]:
        """Start a campaign, or get the one that exists: True when this call created it, and
        then every recipient was snapshotted into a queued delivery in the same transaction.

        INSERT … ON CONFLICT DO NOTHING: two runs that start the same issue at once both get
        the one campaign (on PostgreSQL the second waits for the first to commit, then sees
        its row), never an IntegrityError. With `editions` each delivery records the edition
        its person gets: their language if it has an edition, else the site's.
        """
        with self.engine.begin() as conn:
            cid = conn.execute(
                insert_ignore(conn, campaigns)
                .values(
                    slug=slug,
                    content_hash=content_hash,
                    status=CampaignStatus.SENDING,
                    recipients=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(campaigns.c.id)
            ).scalar()
            if cid is not None:
                self._snapshot(conn, cid, topics, regions, now, editions)
        found = self.campaign(slug)
        assert found is not None
        return found, cid is not None

    def _snapshot(
        self,
        conn: Connection,
        cid: int,
        topics: Sequence[str],
        regions: Sequence[str],
        now: datetime,
        editions: Editions | None,
    ) -> None:
        d = deliveries.c
        when = sa.literal(now, d.queued_at.type)
        source = self._recipients(topics, regions).add_columns(
            sa.literal(cid),
            sa.literal(DeliveryStatus.QUEUED, d.status.type),
            sa.literal(0),
            when,
            edition_column(editions),
        )
        columns = ["subscriber_id", "campaign_id", "status", "attempts", "queued_at", "edition"]
        conn.execute(sa.insert(deliveries).from_select(columns, source))
        count = conn.execute(
            sa.select(sa.func.count()).where(deliveries.c.campaign_id == cid)
        ).scalar_one()
        conn.execute(sa.update(campaigns).where(campaigns.c.id == cid).values(recipients=count))
        # The reach as numbers now: later erasures and changed choices do not rewrite it.
        s = subscribers.c
        reach = (
            sa.select(sa.literal(cid), d.edition, s.regions, s.topics, sa.func.count())
            .select_from(deliveries.join(subscribers, s.id == d.subscriber_id))
            .where(d.campaign_id == cid)
            .group_by(d.edition, s.regions, s.topics)
        )
        columns = ["campaign_id", "edition", "regions", "topics", "recipients"]
        conn.execute(sa.insert(campaign_reach).from_select(columns, reach))

    def update_campaign(self, cid: int, now: datetime, **values: Any) -> None:
        """Change a campaign's status or content hash."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(campaigns).where(campaigns.c.id == cid).values(updated_at=now, **values)
            )

    # -- claiming and recording ------------------------------------------------------------

    def release_orphans(
        self, cid: int, abandoned: Callable[[str], bool], now: datetime, keep: str | None = None
    ) -> int:
        """Requeue rows a crashed run left in `sending` (its owner is gone or its lease ran out).

        `keep` is the caller's own owner id: its rows are never released.
        """
        d = deliveries.c
        with self.engine.begin() as conn:
            owners = conn.execute(
                sa.select(d.claimed_by, sa.func.min(d.claimed_until))
                .where(d.campaign_id == cid, d.status == DeliveryStatus.SENDING)
                .group_by(d.claimed_by)
            ).all()
            gone = [
                o
                for o, until in owners
                if o != keep and (o is None or until <= now or abandoned(o))
            ]
            if not gone:
                return 0
            result = conn.execute(
                sa.update(deliveries)
                .where(d.campaign_id == cid, d.status == DeliveryStatus.SENDING)
                .where(sa.or_(d.claimed_by.in_([g for g in gone if g]), d.claimed_by.is_(None)))
                .values(
                    status=DeliveryStatus.QUEUED,
                    claimed_by=None,
                    claimed_until=None,
                    updated_at=now,
                )
            )
            return int(result.rowcount)

    def renew(self, cid: int, owner: str, until: datetime) -> int:
        """Extend the lease of the rows `owner` holds in campaign `cid` (a live run's heartbeat)."""
        d = deliveries.c
        # SKIP LOCKED: a row the run's outcome writer holds just now is about to be final; the
        # heartbeat must not wait for it (nor the writer for the heartbeat: no deadlock).
        held = (
            sa.select(d.id)
            .where(d.campaign_id == cid, d.status == DeliveryStatus.SENDING, d.claimed_by == owner)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(deliveries).where(d.id.in_(held)).values(claimed_until=until)
            )
            return int(result.rowcount)

    def unfinished_elsewhere(self, cid: int, owner: str, soon: datetime) -> int:
        """Rows of campaign `cid` that another run holds, or that come due by `soon`.

        A run with nothing left to claim waits while this is above zero: another worker's
        claims end as outcomes or, when that worker died, are taken over after its lease.
        """
        d = deliveries.c
        query = sa.select(sa.func.count()).where(
            d.campaign_id == cid,
            sa.or_(
                sa.and_(d.status == DeliveryStatus.SENDING, d.claimed_by.is_distinct_from(owner)),
                sa.and_(d.status.in_(CLAIMABLE), d.next_attempt_at <= soon),
            ),
        )
        with self.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def reserve(self, cid: int, count: int, rate: float, now: float) -> float:
        """Reserve `count` messages of the campaign's one send budget; when the first may go."""
        return reserve(self.engine, cid, count, rate, now)

    def claim(
        self, cid: int, owner: str, limit: int, now: datetime, until: datetime
    ) -> list[Claimed]:
        """Take up to `limit` due rows for this run (SKIP LOCKED where the database has it)."""
        if self.engine.dialect.name == "postgresql":
            return self._claimed(self._claim_postgresql(cid, owner, limit, now, until))
        with self.engine.begin() as conn:
            # Plain SQL, the same text each time: SQLAlchemy's statement building and row
            # processing cost more than SQLite's claim itself, on the thread that feeds
            # every connection.
            stamp = self._stamp
            params = {"cid": cid, "owner": owner, "limit": limit}
            params |= {"now": stamp(now), "until": stamp(until)}
            ids = [row[0] for row in conn.exec_driver_sql(_CLAIM_SQLITE, params)]
            if not ids:
                return []
            rows = conn.exec_driver_sql(_CLAIMED_SQLITE, {"ids": json.dumps(ids)}).all()
        parse = self._parse
        return self._claimed((*row[:3], parse(row[3]), *row[4:]) for row in rows)

    def _claim_postgresql(
        self, cid: int, owner: str, limit: int, now: datetime, until: datetime
    ) -> list[tuple[Any, ...]]:
        """The claim as one statement in plain DB-API: its own transaction (autocommit), one
        round trip, no SQLAlchemy layers on the thread that feeds every connection."""
        raw = self.engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            driver.autocommit = True
            try:
                params = {"cid": cid, "owner": owner, "limit": limit, "now": now, "until": until}
                rows = driver.execute(_CLAIM_POSTGRESQL, params, prepare=True).fetchall()
            finally:
                if not driver.closed:  # the pool hands it out again: as it came
                    driver.autocommit = False
        except BaseException:
            raw.invalidate()  # a connection the database dropped is never used twice
            raise
        finally:
            raw.close()
        # Aware UTC datetimes, as UTCDateTime gives them (the session's zone may differ).
        return [(*row[:3], row[3].astimezone(UTC), *row[4:]) for row in rows]

    @staticmethod
    def _claimed(rows: Iterable[tuple[Any, ...]]) -> list[Claimed]:
        """Claimed rows from (id, subscriber id, attempts, queued at, edition, then the
        subscriber's id, uid, e-mail, name, language, status, key, link version, regions and
        topics, all None for an erased one), in id order."""
        out = []
        for did, sid, attempts, queued_at, edition, person, *p in rows:
            if person is None:  # erased: the row is skipped when its turn comes
                out.append(
                    Claimed(
                        did, attempts, queued_at, sid, None, None, None, edition or "", None, None
                    )
                )
                continue
            uid, email, name, language, status, key, link_version, regions, topics = p
            out.append(
                Claimed(
                    did,
                    attempts,
                    queued_at,
                    sid,
                    uid,
                    email,
                    name,
                    # The edition recorded at enqueue; older rows: the person's language now.
                    edition or language,
                    SubscriberStatus(status),
                    key,
                    link_version,
                    regions,
                    topics,
                )
            )
        return out

    def writer(self, source: str, owner: str) -> LedgerWriter:
        """A writer of outcomes for the run `owner`; `source` names it in bounce consent rows."""
        return LedgerWriter(self.engine, self.bounces, source, owner)

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
                .where(campaigns.c.status.in_(RETRYING))
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

    def parallel_writes(self) -> bool:
        """Whether writers of outcomes commit side by side: PostgreSQL does (and flushes
        concurrent commits together); SQLite lets one write at a time."""
        return self.engine.dialect.name != "sqlite"

    def suppression_probe(self) -> SuppressionProbe:
        """A lookup for one worker thread; close it when the thread ends."""
        return SuppressionProbe(self.engine)
