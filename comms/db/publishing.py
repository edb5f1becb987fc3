"""What publishing reads from the database and keeps there (comms.publish.state's
PublishState): the started campaigns, the feed history, the pending WebSub notifications.

Plain SQL that SQLite and PostgreSQL both take, run either through an engine (the server, the
scheduler, a send: SQLAlchemy is loaded there anyway) or over a DB-API connection of its own
(comms.db.driver). A `comms build` takes the second where it can: SQLAlchemy and its dialect
would cost it about a sixth of a second to import, more than the queries themselves. Either way
the rows and their types are the same, so a record one path writes reads back alike on the
other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from comms.core.config import Config
from comms.core.server_state import STAMP_SQL, stamp_text
from comms.db.driver import VERSION_SQL, at_head, connect, unusable
from comms.db.space import out_of_space, space_error

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: One item's feed record: (digest, sequence, first seen, last changed or None).
FeedRow = tuple[str, int, datetime, datetime | None]
#: One statement of a write and its rows of parameters (none: run once, as it is).
Step = tuple[str, list[tuple[Any, ...]] | None]

# comms.core.server_state.STAMP_SQL stamps what these two read: read more, stamp more.
_STARTED = "SELECT slug FROM campaigns"
_FEED_ROWS = "SELECT uid, digest, sequence, seen, changed FROM feed_items"
#: An upsert: two builds at once on two hosts write the same rows without a conflict.
_SAVE_FEED_ROW = (
    "INSERT INTO feed_items (uid, digest, sequence, seen, changed) "
    "VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (uid) DO UPDATE SET "
    "digest = excluded.digest, sequence = excluded.sequence, seen = excluded.seen, "
    "changed = excluded.changed"
)
_PINGS = "SELECT hub, topic FROM websub_pending"
_DROP_PINGS = "DELETE FROM websub_pending"
_ADD_PING = "INSERT INTO websub_pending (hub, topic) VALUES ({p}, {p})"
#: Each driver's parameter marker.
_MARK = {"sqlite": "?", "postgresql": "%s"}


class Runner(Protocol):
    """Runs plain SQL (with the driver's parameter markers) on one database."""

    #: "sqlite" or "postgresql".
    dialect: str
    #: The database's URL (its file or server, in a message about it).
    url: str

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one query."""

    def write(self, steps: Sequence[Step]) -> None:
        """Run `steps` in one transaction (on SQLite one that holds the write lock)."""

    def close(self) -> None:
        """Give the connection back."""


class EngineRunner:
    """SQL through an engine (comms.db.engine): its pool, its SQLite transactions, its errors."""

    def __init__(self, engine: Engine, owned: bool = False) -> None:
        self.engine, self.owned = engine, owned
        self.dialect = engine.dialect.name
        self.url = engine.url.render_as_string(hide_password=False)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one query, in a transaction that takes no write lock."""
        from comms.db.engine import read_only

        with read_only(self.engine) as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]

    def write(self, steps: Sequence[Step]) -> None:
        """Run `steps` in one transaction."""
        with self.engine.begin() as conn:
            for sql, params in steps:
                if params is None:
                    conn.exec_driver_sql(sql)
                elif params:
                    conn.exec_driver_sql(sql, params)

    def close(self) -> None:
        """Dispose of the engine if this runner opened it."""
        if self.owned:
            self.engine.dispose()


class DirectRunner:
    """SQL over one DB-API connection of its own (comms.db.driver.connect), without SQLAlchemy;
    the driver's errors pass through."""

    def __init__(self, conn: Any, dialect: str, url: str) -> None:
        self.conn, self.dialect, self.url = conn, dialect, url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one query (a statement of its own: SQLite and PostgreSQL autocommit)."""
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def write(self, steps: Sequence[Step]) -> None:
        """Run `steps` in one transaction: BEGIN IMMEDIATE on SQLite, as the engine does."""
        begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN"
        cursor = self.conn.cursor()
        try:
            cursor.execute(begin)
            for sql, params in steps:
                if params is None:
                    cursor.execute(sql)
                elif params:
                    cursor.executemany(sql, params)
            cursor.execute("COMMIT")
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except Exception:  # the connection is gone: so is the transaction
                pass
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _time(value: Any, dialect: str) -> datetime:
    """An aware UTC datetime from what the driver gives (as comms.db.tables.UTCDateTime):
    SQLite's text without an offset is UTC, PostgreSQL's is in the session's time zone."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a time in the {dialect} database: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored(value: datetime | None, dialect: str) -> Any:
    """A time as the engine stores it (as UTCDateTime): SQLite's text in SQLAlchemy's format,
    UTC without an offset; an aware datetime for PostgreSQL."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    value = value.astimezone(UTC)
    if dialect == "sqlite":
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


class DbPublishState:
    """The sent issues, the feed history and pending WebSub notifications in the database: every
    server and worker sees the same public issues, the same SEQUENCE and the same queue."""

    keeps_feed_rows = True

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._mark = _MARK[runner.dialect]

    @classmethod
    def of(cls, engine: Engine) -> DbPublishState:
        """The state in `engine`'s database (the caller keeps and disposes of the engine)."""
        return cls(EngineRunner(engine))

    @classmethod
    def open(cls, config: Config) -> DbPublishState:
        """Open the configured database; migrate it where its schema is older. A connection
        of its own where the URL allows and the schema is current (nothing to migrate), else
        through an engine. No secret key is needed or made."""
        runner = _direct(config.database_url)
        if runner is not None:
            return cls(runner)
        import sqlalchemy as sa

        from comms.db.engine import make_engine, probe, upgrade

        engine = make_engine(config.database_url)
        try:
            # Away or refused, at first or meanwhile; a migration's own error stays one,
            # with its traceback.
            try:
                probe(engine)
                upgrade(engine, files_root=config.root)
            except sa.exc.OperationalError as exc:
                raise unusable(exc.orig) from None
        except BaseException:
            engine.dispose()
            raise
        return cls(EngineRunner(engine, owned=True))

    def close(self) -> None:
        """Give the connections back."""
        self.runner.close()

    def sent_issues(self) -> frozenset[str]:
        """Slugs of the issues whose campaign has started: their mails are (being) sent."""
        return frozenset(str(slug) for (slug,) in self.runner.rows(_STARTED))

    def feed_rows(self) -> dict[str, FeedRow]:
        """Every item's record, by item uid."""
        dialect = self.runner.dialect
        return {
            uid: (
                digest,
                sequence,
                _time(seen, dialect),
                None if changed is None else _time(changed, dialect),
            )
            for uid, digest, sequence, seen, changed in self.runner.rows(_FEED_ROWS)
        }

    def save_feed_rows(self, rows: dict[str, FeedRow]) -> None:
        """Insert or replace these records, in one transaction."""
        dialect = self.runner.dialect
        params = [
            (uid, digest, sequence, _stored(seen, dialect), _stored(changed, dialect))
            for uid, (digest, sequence, seen, changed) in rows.items()
        ]
        self._write([(_SAVE_FEED_ROW.format(p=self._mark), params)])

    def pending_pings(self) -> set[tuple[str, str]]:
        """(hub, feed URL) pairs whose notification failed."""
        return {(str(hub), str(topic)) for hub, topic in self.runner.rows(_PINGS)}

    def set_pending_pings(self, pairs: set[tuple[str, str]]) -> None:
        """Replace the pending notifications with `pairs`."""
        self._write([(_DROP_PINGS, None), (_ADD_PING.format(p=self._mark), sorted(pairs))])

    def _write(self, steps: Sequence[Step]) -> None:
        """`steps` in one transaction; a database out of space is told in one line that names
        the SQLite file and the space free beside it (comms.db.space), on either path."""
        try:
            self.runner.write(steps)
        except Exception as exc:
            if out_of_space(exc):
                raise space_error(exc, self.runner.url) from exc
            raise

    def server_stamp(self) -> str | None:
        """The stamp of the started campaigns and feed records on PostgreSQL (the query the
        skipped build runs through psycopg alone); None on SQLite, whose files stamp it."""
        if self.runner.dialect != "postgresql":
            return None
        try:
            ((digest,),) = self.runner.rows(STAMP_SQL)
        except Exception:  # no stamps: the next build reads the site (the build is written)
            return None
        return stamp_text(str(digest))

    def written_stamp(self) -> str | None:
        """None: a database, no state file."""
        return None


def _direct(url: str) -> DirectRunner | None:
    """A connection of its own to `url` whose schema is current; None where the engine must
    open it (a URL only it reads, a file or schema to make, a schema to migrate).
    ConfigError where the database cannot be reached or opened."""
    opened = connect(url)
    if opened is None:
        return None
    runner = DirectRunner(*opened, url=url)
    try:
        current = at_head(runner.rows(VERSION_SQL))
    except Exception:
        current = False  # no schema yet
    if not current:
        runner.close()
        return None
    return runner
