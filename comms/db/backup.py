"""`comms backup` and `comms restore`: SQLite's online backup API; PostgreSQL has its own tools."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from comms.core.database_url import sqlite_file
from comms.core.errors import CommsError
from comms.core.files import private_file
from comms.core.logs import shown_url

PG_ADVICE = (
    "the database is PostgreSQL: back it up with `pg_dump --format=custom --file=FILE DBNAME` "
    "and restore with `pg_restore --clean --if-exists --dbname=DBNAME FILE` (see "
    "docs/operations.md); they copy a consistent snapshot while comms keeps running"
)


def sqlite_path(url: str) -> Path:
    """The file of a SQLite database URL, or a CommsError saying what to use instead."""
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        backend = None
    if backend == "postgresql":
        raise CommsError(PG_ADVICE)
    path = sqlite_file(url)
    if path is None:
        raise CommsError(
            f"cannot back up or restore the database '{shown_url(url)}': not a SQLite file"
        )
    return path


def _copy(source: Path, target: Path) -> int:
    """Copy a whole SQLite database page by page (readers and writers may go on); page count."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
    src.close()
    dst.close()
    return pages


def _check(path: Path) -> None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CommsError(f"{path}: not a comms database ({exc})") from None
    conn.close()
    if result != "ok":
        raise CommsError(f"{path}: the database is damaged ({result})")


def backup(url: str, target: Path) -> int:
    """Write a consistent copy of the SQLite database to `target` while it is in use."""
    source = sqlite_path(url)
    if not source.exists():
        raise CommsError(f"{source}: no database to back up")
    if target.exists():
        raise CommsError(f"{target}: exists already; choose a new file")
    private_file(target)  # a copy of personal data: 0600 whatever the umask
    pages = _copy(source, target)
    _check(target)
    return pages


def restore(url: str, source: Path) -> int:
    """Replace the SQLite database with the backup `source` (stop every comms process first)."""
    target = sqlite_path(url)
    if not source.is_file():
        raise CommsError(f"{source}: no such backup file")
    _check(source)
    private_file(target)  # as the database comms creates itself: 0600 whatever the umask
    return _copy(source, target)
