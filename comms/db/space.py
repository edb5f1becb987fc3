"""A database that ran out of space (SQLite's SQLITE_FULL, PostgreSQL's disk_full), told as one
line that names the SQLite file and the space free beside it."""

from __future__ import annotations

from comms.core.database_url import sqlite_file
from comms.core.errors import LocalError
from comms.core.local_faults import space_note

#: PostgreSQL's SQLSTATE for a full disk (class 53, insufficient resources).
_PG_DISK_FULL = "53100"


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error: SQLAlchemy's wraps it (`orig`); a plain DB-API connection
    (comms.db.driver) raises it as it is."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def out_of_space(exc: BaseException) -> bool:
    """True when the database refused a write for want of space (file system or quota)."""
    orig = _driver_error(exc)
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL":
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


def space_error(exc: BaseException, url: str | None = None) -> LocalError:
    """`exc` (out of space) as one line: the SQLite file and its free space, or the server."""
    orig = _driver_error(exc)
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else "out of space"
    path = sqlite_file(url) if url is not None else None
    if path is not None:
        return LocalError(f"cannot write the database {path}: {reason} ({space_note(path)})")
    if url is not None or getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        return LocalError(f"the database server is out of disk space: {reason}")
    return LocalError(f"cannot write the database: {reason}")
