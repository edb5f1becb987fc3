"""State every process on one database shares: rate-limit hits, the send budget, and what
publishing reads (the sent issues) and keeps (the feed history, pending WebSub notifications)."""

from __future__ import annotations

import random
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.core.config import Config
from comms.core.errors import ConfigError
from comms.core.keys import Purpose, keyed_hash
from comms.core.server_state import STAMP_SQL, stamp_text
from comms.db.approvals import Desk
from comms.db.engine import dialect_insert, insert_ignore, make_engine, read_only, upgrade
from comms.db.tables import feed_items, rate_hits, send_budget, websub_pending

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


#: One item's feed record: (digest, sequence, first seen, last changed or None).
FeedRow = tuple[str, int, datetime, datetime | None]


class DbPublishState:
    """The sent issues, the feed history and pending WebSub notifications in the database
    (comms.publish.state's PublishState): every server and worker sees the same public issues,
    the same SEQUENCE and the same queue."""

    keeps_feed_rows = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, config: Config) -> DbPublishState:
        """Open the configured database and migrate it; no secret key is needed or made."""
        engine = make_engine(config.database_url)
        try:
            upgrade(engine, files_root=config.root)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise ConfigError([f"database_url: cannot use the database: {exc.orig}"]) from None
        return cls(engine)

    def close(self) -> None:
        """Give the connections back."""
        self.engine.dispose()

    def sent_issues(self) -> frozenset[str]:
        """Slugs of the issues whose campaign has started: their mails are (being) sent."""
        return Desk(self.engine).started()

    def feed_rows(self) -> dict[str, FeedRow]:
        """Every item's record, by item uid."""
        # comms.core.server_state.STAMP_SQL stamps these rows: read more, stamp more.
        f = feed_items.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(f.uid, f.digest, f.sequence, f.seen, f.changed))
            return {row.uid: (row.digest, row.sequence, row.seen, row.changed) for row in rows}

    def save_feed_rows(self, rows: dict[str, FeedRow]) -> None:
        """Insert or replace these records, in one transaction (an upsert: two builds at once
        on two hosts write the same rows without a conflict)."""
        with self.engine.begin() as conn:
            insert = dialect_insert(conn, feed_items)
            columns = ("digest", "sequence", "seen", "changed")
            upsert = insert.on_conflict_do_update(
                index_elements=[feed_items.c.uid], set_={c: insert.excluded[c] for c in columns}
            )
            conn.execute(
                upsert,
                [
                    {"uid": uid, "digest": d, "sequence": n, "seen": seen, "changed": changed}
                    for uid, (d, n, seen, changed) in rows.items()
                ],
            )

    def pending_pings(self) -> set[tuple[str, str]]:
        """(hub, feed URL) pairs whose notification failed."""
        with self.engine.connect() as conn:
            return {(h, t) for h, t in conn.execute(sa.select(websub_pending))}

    def set_pending_pings(self, pairs: set[tuple[str, str]]) -> None:
        """Replace the pending notifications with `pairs`."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(websub_pending))
            if pairs:
                conn.execute(
                    sa.insert(websub_pending),
                    [{"hub": h, "topic": t} for h, t in sorted(pairs)],
                )

    def server_stamp(self) -> str | None:
        """The stamp of the started campaigns and feed records on PostgreSQL (the query the
        skipped build runs through psycopg alone); None on SQLite, whose files stamp it."""
        if self.engine.dialect.name != "postgresql":
            return None
        try:
            with read_only(self.engine) as conn:
                digest = conn.exec_driver_sql(STAMP_SQL).scalar_one()
        except sa.exc.SQLAlchemyError:
            return None  # no stamps: the next build reads the site (the build is written)
        return stamp_text(str(digest))

    def written_stamp(self) -> str | None:
        """None: a database, no state file."""
        return None
