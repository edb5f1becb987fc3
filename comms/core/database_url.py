"""Which SQLite file a database URL names: one parse (SQLAlchemy's `make_url`) for every driver."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def sqlite_file(url: str, root: Path | None = None) -> Path | None:
    """The file of a SQLite URL (any driver: `sqlite://`, `sqlite+pysqlite://` …), absolute.

    A relative path is taken relative to `root` (the config file's folder; the working
    directory without one). None for another database, an in-memory SQLite database, an
    SQLite URI filename (`?uri=true`) or a URL that does not parse (the engine says why).
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") in ("true", "1"):
        return None
    path = Path(database)
    return ((root or Path.cwd()) / path).resolve() if not path.is_absolute() else path


def database_exists(url: str) -> bool:
    """False for an SQLite file that is not there yet; servers are assumed to exist."""
    path = sqlite_file(url)
    return path is None or path.is_file()


def resolve_database_url(url: str, root: Path) -> str:
    """`url` with a relative SQLite path made absolute against `root`, and `postgres://` (the
    form hosting providers hand out, which SQLAlchemy no longer reads) as `postgresql://`."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    path = sqlite_file(url, root)
    if path is None:
        return url
    return make_url(url).set(database=str(path)).render_as_string(hide_password=False)


def database_password(url: str) -> str | None:
    """The password a database URL holds (a secret: masked in logs), if any."""
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):  # e.g. a port that is no number: the engine says so
        return None
