"""Claimed deliveries and their outcomes, and the writer that records outcomes (the hot path)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.db.engine import driver_conversions, driver_params, driver_statement
from comms.db.status import CLAIMABLE, DeliveryStatus, SubscriberStatus
from comms.db.tables import deliveries


class Claimed(NamedTuple):
    """A delivery this run now owns, with what sending it needs of the subscriber.

    Immutable records of the send path (Claimed, Outcome; comms.mail's Recipient and
    OutgoingMessage) are named tuples, not frozen dataclasses: one of each is made per
    message, and a frozen dataclass sets each field through `object.__setattr__` (about
    1-2 µs a record, against 0.3 µs).
    """

    delivery_id: int
    attempts: int  # before this one
    queued_at: datetime
    subscriber_id: int | None
    uid: str | None
    email: str | None
    name: str | None
    language: str
    subscriber_status: SubscriberStatus | None
    key: str | None
    #: The subscriber's key version, for the preferences link (comms.db.link_records).
    link_version: int = 0
    #: The subscriber's regions and topics as stored (` a b `): a digest issue's sections.
    regions: str = ""
    topics: str = ""


class Outcome(NamedTuple):
    """What happened to one claimed delivery; `bounce` also ends the subscription."""

    delivery_id: int
    status: DeliveryStatus
    message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    bounce: Claimed | None = None
    #: False when the message never left (a stopped run hands the row back untouched).
    attempted: bool = True


class BounceSink(Protocol):
    """Who ends a subscription after a bounce (the subscriber store)."""

    def bounced(
        self, conn: Connection, sid: int, key: str, error: str | None, source: str, at: datetime
    ) -> None:
        """End subscriber `sid` as bounced, inside the transaction of `conn`."""


def _is(status: DeliveryStatus) -> sa.ColumnElement[bool]:
    # A constant in the SQL text: the statement is compiled once for executemany (see below).
    return deliveries.c.status == sa.literal_column(f"'{status.value}'")


#: An outcome lands only on a row its run still holds, or on one that was handed back and not
#: taken since. A run that lost the database for longer than its lease may find its rows taken
#: over by another worker, or already final: its late outcome must not undo theirs (a row set
#: back to `queued` after it was sent would be sent again).
_STILL_OURS = sa.or_(
    sa.and_(_is(DeliveryStatus.SENDING), deliveries.c.claimed_by == sa.bindparam("owner")),
    sa.and_(deliveries.c.claimed_by.is_(None), sa.or_(*(_is(status) for status in CLAIMABLE))),
)

_RECORD = (
    sa.update(deliveries)
    .where(deliveries.c.id == sa.bindparam("did"), _STILL_OURS)
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

#: `_STILL_OURS` on PostgreSQL, for the statements below (`d` the row, `owner` the run).
_STILL_OURS_POSTGRESQL = f"""(
    (d.status = '{DeliveryStatus.SENDING}' AND d.claimed_by = %(owner)s)
    OR (d.claimed_by IS NULL AND d.status IN ({", ".join(f"'{s}'" for s in CLAIMABLE)}))
)"""
#: One outcome on PostgreSQL (the common group: each connection has its own writer), in
#: autocommit: one round trip, its own transaction, durable (synchronous_commit) once it
#: returns. Scalar parameters: psycopg turns them into a message for a fraction of the
#: Python time that lists take.
_RECORD_ONE_POSTGRESQL = f"""
UPDATE deliveries AS d
SET status = %(st)s, message_id = %(mid)s, last_error = %(err)s, next_attempt_at = %(nxt)s,
    attempts = d.attempts + %(inc)s, claimed_by = NULL, claimed_until = NULL,
    updated_at = %(now)s
WHERE d.id = %(did)s AND {_STILL_OURS_POSTGRESQL}
"""
#: A group of outcomes as one statement, one array per column: the same text for every group
#: size (prepared once), rows by primary key in the arrays' order.
_RECORD_POSTGRESQL = f"""
UPDATE deliveries AS d
SET status = v.st, message_id = v.mid, last_error = v.err, next_attempt_at = v.nxt,
    attempts = d.attempts + v.inc, claimed_by = NULL, claimed_until = NULL,
    updated_at = %(now)s
FROM unnest(%(did)s::integer[], %(st)s::varchar[], %(mid)s::varchar[], %(err)s::text[],
    %(nxt)s::timestamptz[], %(inc)s::integer[]) AS v (did, st, mid, err, nxt, inc)
WHERE d.id = v.did AND {_STILL_OURS_POSTGRESQL}
"""


class LedgerWriter:
    """Records outcomes over one connection with a statement compiled once: the hot path.

    SQLAlchemy's per-call statement building and parameter processing cost more than SQLite's
    update itself; a send run commits many small groups, so they are done once here.
    """

    def __init__(self, engine: Engine, bounces: BounceSink, source: str, owner: str) -> None:
        self.bounces = bounces
        self.source = source
        self.owner = owner
        self.engine = engine
        # Opened at the first write, and again after a failed one: a connection the database
        # dropped (a restart) is never used twice.
        self._conn: Connection | None = None
        self.sql, self.order = driver_statement(engine.dialect, _RECORD)
        self.postgresql = engine.dialect.name == "postgresql"
        convert, _ = driver_conversions(deliveries.c.updated_at.type, engine.dialect)
        self.convert: Callable[[datetime | None], Any] = convert or (lambda value: value)

    @property
    def conn(self) -> Connection:
        """The writer's connection, opened when first needed."""
        if self._conn is None:
            self._conn = self.engine.connect()
            if self.postgresql:
                # Between transactions in autocommit: the common write is one statement, its
                # own transaction (switching for each write costs more than the statement).
                self._driver().autocommit = True
        return self._conn

    def _driver(self) -> Any:
        raw = self.conn.connection.dbapi_connection
        assert raw is not None
        return raw

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Write outcomes (and their bounces) in one transaction; after a failure the next
        write opens a new connection (the outcomes may be written again: it is idempotent)."""
        if not outcomes:
            return
        try:
            self._write(outcomes, now)
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # the connection is broken already
                pass

    def _write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        bounces = [o for o in outcomes if o.bounce and o.bounce.subscriber_id and o.bounce.key]
        if self.postgresql and not bounces:
            self._fast_postgresql(outcomes, now)
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
                "owner": self.owner,
            }
            # In id order, so that concurrent writers lock rows in one order (no deadlock).
            for o in sorted(outcomes, key=lambda o: o.delivery_id)
        ]
        params = driver_params(self.order, rows)
        if not bounces:
            self._fast(params)
            return
        # The subscriber change commits with the delivery outcome, or neither does.
        self._autocommit(False)
        with self.conn.begin():
            self.conn.exec_driver_sql(self.sql, params)
            for o in bounces:
                assert o.bounce is not None and o.bounce.subscriber_id and o.bounce.key
                sid, key = o.bounce.subscriber_id, o.bounce.key
                self.bounces.bounced(self.conn, sid, key, o.error, self.source, now)
        self._autocommit(True)

    def _autocommit(self, on: bool) -> None:
        """Switch PostgreSQL's autocommit, outside the fast path's (a failure drops the
        connection, so it is never used half switched)."""
        if self.postgresql and not self._driver().closed:
            self._driver().autocommit = on

    def _fast(self, params: list[Any]) -> None:
        """The common case on SQLite in plain DB-API calls: even opening a transaction
        through the engine costs more than the update itself."""
        raw = self.conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.executemany(self.sql, params)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def _fast_postgresql(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """The common case on PostgreSQL: the group in one statement, in plain DB-API."""
        if len(outcomes) == 1:
            [o] = outcomes
            one = {
                "did": o.delivery_id,
                "st": o.status.value,
                "mid": o.message_id,
                "err": o.error,
                "nxt": o.next_attempt_at,
                "inc": int(o.attempted),
                "now": now,
                "owner": self.owner,
            }
            self._driver().execute(_RECORD_ONE_POSTGRESQL, one, prepare=True)
            return
        # In id order, so that concurrent writers lock rows in one order (no deadlock).
        group = sorted(outcomes, key=lambda o: o.delivery_id)
        params = {
            "did": [o.delivery_id for o in group],
            "st": [o.status.value for o in group],
            "mid": [o.message_id for o in group],
            "err": [o.error for o in group],
            "nxt": [o.next_attempt_at for o in group],
            "inc": [int(o.attempted) for o in group],
            "now": now,
            "owner": self.owner,
        }
        self._driver().execute(_RECORD_POSTGRESQL, params, prepare=True)

    def close(self) -> None:
        """Give the connection back."""
        if self._conn is not None:
            self._autocommit(False)  # the pool hands it out again: as it came
            self._conn.close()
            self._conn = None
