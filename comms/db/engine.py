"""The database underneath: engines (SQLite pragmas), migrations, the secret, raw bulk helpers."""

from __future__ import annotations

import functools
import operator
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from comms.core.database_url import server_defaults, sqlite_file
from comms.core.errors import ConfigError
from comms.core.files import private_file, write_private
from comms.core.keys import Purpose, key_problem, keyed_hash
from comms.core.logs import shown_url
from comms.db.driver import MIGRATIONS, VERSION_SQL, at_head, sqlite_setup, unusable
from comms.db.tables import meta

#: The advisory lock key that serialises migrations on PostgreSQL (any constant of our own).
MIGRATION_LOCK = 0x636F6D6D73


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """The INSERT of the connection's dialect, the one with ON CONFLICT clauses."""
    # Imported on use: the PostgreSQL dialect (with asyncpg's and psycopg's parts) costs a
    # twentieth of a second of every SQLite command's start-up.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def driver_conversions(
    column_type: sa.types.TypeEngine[Any], dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]:
    """How a value of `column_type` goes to the driver and comes back in a plain DB-API
    statement (None: as it is), as SQLAlchemy's own statements convert it: through the
    dialect's implementation of the type. A TypeDecorator's own `bind_processor` skips it and
    leaves a SQLite timestamp to sqlite3's deprecated adapter, whose text drops a zero
    fraction and so compares unequal to the same time bound by SQLAlchemy."""
    impl = column_type.dialect_impl(dialect)
    return impl.bind_processor(dialect), impl.result_processor(dialect, None)


def insert_ignore(conn: Connection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the connection's dialect."""
    return dialect_insert(conn, table).on_conflict_do_nothing()


def driver_statement(dialect: Dialect, statement: Any) -> tuple[str, list[str] | None]:
    """A statement compiled once for plain DB-API executemany: (SQL, positional key order)."""
    compiled = statement.compile(dialect=dialect)
    if compiled.positiontup is None:
        return compiled.string, None
    return compiled.string, [compiled.binds[name].key for name in compiled.positiontup]


def driver_params(order: list[str] | None, rows: list[dict[str, Any]]) -> list[Any]:
    """Rows as the DB-API wants them for a statement from `driver_statement`."""
    if order is None:
        return rows
    if len(order) == 1:
        return [(row[order[0]],) for row in rows]
    pick = operator.itemgetter(*order)
    return [pick(row) for row in rows]


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    sqlite_setup(dbapi_connection)


def _sqlite_begin(conn: Connection) -> None:
    # Writers queue for the lock at BEGIN; readers (`read_only`) stay out of their way.
    read = conn.get_execution_options().get("comms_read", False)
    conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite its transactions do not take the write lock."""
    return engine.connect().execution_options(comms_read=True)


def drop_old_pages(engine: Engine) -> None:
    """After an erasure on SQLite: checkpoint the write-ahead log into the file and truncate
    it, so the erased rows' earlier page images leave the log as well (secure_delete has
    zeroed them in the file). A reader still busy defers this to a later checkpoint."""
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL's VACUUM (autovacuum) reclaims dead rows
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    finally:
        raw.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    path = sqlite_file(url)
    if path is not None:
        # Created 0600 in a 0700 folder before SQLite opens it: its -wal and -shm files take
        # the database file's mode, whatever the umask.
        private_file(path)
    try:
        engine = sa.create_engine(url, connect_args=server_defaults(url))
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise ConfigError([f"database_url: cannot open '{shown_url(url)}': {exc}"]) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def probe(engine: Engine) -> None:
    """Connect once, before anything else: a database that cannot be opened at all (a file
    that is not SQLite's, an option the driver refuses) is a ConfigError in one line. An
    OperationalError (away, refused) is raised as it is, for the caller to tell as it tells
    an outage."""
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        if isinstance(exc, sa.exc.OperationalError):
            raise
        raise unusable(exc.orig) from None


def _at_head(engine: Engine) -> bool:
    """True if the database's schema is the newest already (one read, no write lock)."""
    try:
        with read_only(engine) as conn, conn.begin():
            found = conn.exec_driver_sql(VERSION_SQL).all()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return False  # no schema yet (or the database is away: the full path says so)
    return at_head([tuple(row) for row in found])


def upgrade(engine: Engine, target: str = "head", files_root: Path | None = None) -> None:
    """Bring the schema to the newest version (or `target`) with the package's migrations.

    `files_root` is the config file's folder: state kept in files there before (var/*.json)
    is carried into the database by the migration that brings its table.
    """
    # Every command opens the database: a current schema is seen without loading Alembic
    # and the migration scripts, which cost more CPU than the rest of opening it.
    if target == "head" and _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["files_root"] = files_root
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several hosts starting at once after an update: one migrates, the others wait
            # and then find the schema current (SQLite's BEGIN IMMEDIATE serialises already).
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def bulk_insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """A plain DB-API executemany of many rows with the same keys.

    SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself on large
    imports; values are converted once per distinct value instead (timestamps repeat).
    """
    keys = list(rows[0])
    sql, order = driver_statement(
        conn.dialect, sa.insert(table).values({k: sa.bindparam(k) for k in keys})
    )
    for key in keys:
        processor, _ = driver_conversions(table.c[key].type, conn.dialect)
        if processor is not None:
            cached = functools.lru_cache(maxsize=16)(processor)
            for row in rows:
                row[key] = cached(row[key])
    conn.exec_driver_sql(sql, driver_params(order, rows))


def _read_key_file(key_file: Path) -> str | None:
    try:
        text = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError([f"{key_file}: cannot read the secret key: {exc.strerror}"]) from None
    problem = key_problem(text)
    if problem is not None:
        raise ConfigError([f"{key_file}: {problem}"])
    return text


def resolve_secret(engine: Engine, given: str | None, key_file: Path) -> tuple[str, bool]:
    """The secret to use and whether it was generated now (docs/security.md, "The secret key").

    COMMS_SECRET_KEY (`given`) wins; else the key file; else a new key is generated into the
    key file (0600). A key an older version kept in the `meta` table moves to the key file.
    The database keeps only a fingerprint, so a copy of it cannot forge links.
    """
    with engine.begin() as conn:
        stored = dict(conn.execute(sa.select(meta.c.key, meta.c.value)).all())
        generated = False
        secret = given or _read_key_file(key_file)
        if secret is None:
            secret = stored.get("secret_key")
            if secret is None and "secret_check" in stored:
                raise ConfigError(
                    [
                        "environment COMMS_SECRET_KEY: not set, and no key file "
                        f"{key_file}, but this database was set up with a key; set it again "
                        "(tokens and the suppression list depend on it)"
                    ]
                )
            generated = secret is None
            secret = secret or secrets.token_urlsafe(32)
            write_private(key_file, (secret + "\n").encode("ascii"))
        check = keyed_hash(secret, Purpose.SECRET_CHECK)[:16]
        if stored.get("secret_check", check) != check:
            source = "environment COMMS_SECRET_KEY" if given else f"key file {key_file}"
            raise ConfigError(
                [
                    f"{source}: differs from the key this database was set up with; restore "
                    "the old key (tokens and the suppression list depend on it)"
                ]
            )
        if "secret_check" not in stored:
            conn.execute(sa.insert(meta).values(key="secret_check", value=check))
        if "secret_key" in stored:  # from before key files: never again in the database
            conn.execute(sa.delete(meta).where(meta.c.key == "secret_key"))
    return secret, generated


class SuppressionProbe:
    """A per-thread point lookup in the suppression table, cheap enough to run per message."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._cursor: Any = None
        self._sqlite = engine.dialect.name == "sqlite"
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = f"SELECT reason FROM suppression WHERE key = {mark}"

    def reason(self, key: str) -> str | None:
        """Why the address with this key is suppressed right now, or None."""
        if self._conn is None:  # at the first lookup, and again after a failed one
            self._conn = self._engine.raw_connection()
            if not self._sqlite:
                # Each lookup its own statement: it sees the rows committed before it, with no
                # BEGIN and ROLLBACK round trips around it.
                self._conn.driver_connection.autocommit = True
            self._cursor = self._conn.cursor()
        try:
            self._cursor.execute(self._sql, (key,))
            row = self._cursor.fetchone()
        except BaseException:
            self._drop()  # a connection the database dropped is never used twice
            raise
        return None if row is None else str(row[0])

    def _drop(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        try:
            conn.invalidate()
        except Exception:  # the connection is broken already
            pass

    def close(self) -> None:
        """Give the connection back."""
        if self._conn is not None:
            self._cursor.close()
            if not self._sqlite:  # the pool hands it out again: as it came
                self._conn.driver_connection.autocommit = False
            self._conn.close()
            self._conn = None
