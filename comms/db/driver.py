"""The database without SQLAlchemy, for a command that must start fast (`comms build`): the
settings every SQLite connection gets, the newest schema revision, and a plain DB-API
connection for a URL, with the arguments the engine (comms.db.engine) would use."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any

from comms.core.database_url import psycopg_connection, sqlite_connect_file
from comms.core.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Set on every SQLite connection, by the engine and by `connect`.
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "busy_timeout=30000",
    "foreign_keys=ON",
    "synchronous=NORMAL",
    # Deleted rows are overwritten with zeros, not left in free pages (erasure, GDPR).
    "secure_delete=ON",
)


@functools.cache
def head_revision() -> str:
    """The newest migration's revision: each is named after its file, which sorts by number."""
    return max(path.stem for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def sqlite_setup(dbapi_connection: Any) -> None:
    """Autocommit at the driver, and SQLITE_PRAGMAS: writers open their transactions with
    BEGIN IMMEDIATE themselves, so two writers queue on busy_timeout instead of failing on a
    read-to-write upgrade."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


#: The schema's revision, as Alembic records it.
VERSION_SQL = "SELECT version_num FROM alembic_version"


def at_head(rows: list[tuple[Any, ...]]) -> bool:
    """Whether VERSION_SQL's `rows` name the newest revision: the schema needs no migration."""
    return rows == [(head_revision(),)]


def connect(url: str) -> tuple[Any, str] | None:
    """A DB-API connection to `url` and its dialect's name ("sqlite", "postgresql"), opened
    as the engine opens one (PostgreSQL in autocommit). None where only the engine reads the
    URL, psycopg is missing, or the SQLite file is not there yet (the engine makes it 0600
    first). ConfigError, worded as the engine's path words it, when the database cannot be
    reached or opened."""
    path = sqlite_connect_file(url)
    if path is not None:
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise unusable(exc) from None
        try:
            sqlite_setup(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):  # also "file is not a database"
                raise unusable(exc) from None
            raise
        return conn, "sqlite"
    try:
        server = psycopg_connection(url)
    except Exception as exc:
        import psycopg  # loaded already: it raised

        if isinstance(exc, psycopg.Error):  # also an option libpq does not know
            raise unusable(exc) from None
        raise
    return None if server is None else (server, "postgresql")


def unusable(reason: BaseException | None, kind: type[ConfigError] = ConfigError) -> ConfigError:
    """The error for a database that cannot be opened, with the driver's `reason`."""
    return kind([f"database_url: cannot use the database: {reason}"])
