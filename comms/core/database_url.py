"""Which SQLite file a database URL names: one parse for every driver, without SQLAlchemy.

Every command reads the configuration, and the configuration resolves the URL and masks its
password: importing SQLAlchemy for that costs a quarter of a second of CPU on commands that
never open a database (a skipped `comms build`). The pattern is SQLAlchemy's own
(`sqlalchemy.engine.url._parse_url`, 2.x), so both read a URL alike (tests compare them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

#: libpq settings for a database server unless the URL sets them: a server that vanished in a
#: network split is noticed within about a minute instead of a connection hanging for hours
#: (a send run must notice it before its claim lease ends, comms.sending.claims).
SERVER_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)


@dataclass(frozen=True)
class _Parts:
    """The parts of a database URL that comms reads."""

    backend: str
    #: The driver after "+", "" without one.
    driver: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: dict[str, list[str]]
    #: Only the driver name, the database and an empty query: the URL can be written anew.
    simple: bool


def _parse(url: str) -> _Parts | None:
    """The URL's parts as SQLAlchemy's `make_url` reads them; None where it refuses the URL."""
    found = _URL.match(url)
    if found is None:
        return None
    parts = found.groupdict()
    if parts["port"]:
        try:
            int(parts["port"])
        except ValueError:
            return None  # make_url raises ValueError: the engine says what is wrong
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts["query"] or ""):
        query.setdefault(key, []).append(value)
    password, database = parts["password"], parts["database"]
    others = (parts[name] for name in ("username", "ipv4host", "ipv6host", "port"))
    username, host, port = parts["username"], parts["ipv4host"] or parts["ipv6host"], parts["port"]
    backend, _, driver = parts["name"].partition("+")
    return _Parts(
        backend=backend,
        driver=driver,
        username=unquote(username) if username is not None else None,
        password=unquote(password) if password is not None else None,
        host=host,
        port=int(port) if port else None,
        database=unquote(database) if database is not None else None,
        query=query,
        simple=not any(others) and password is None and not parts["query"],
    )


def sqlite_file(url: str, root: Path | None = None) -> Path | None:
    """The file of a SQLite URL (any driver: `sqlite://`, `sqlite+pysqlite://` …), absolute.

    A relative path is taken relative to `root` (the config file's folder; the working
    directory without one). None for another database, an in-memory SQLite database, an
    SQLite URI filename (`?uri=true`) or a URL that does not parse (the engine says why).
    """
    parsed = _parse(url)
    if parsed is None:
        return None
    database = parsed.database
    if parsed.backend != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") in (["true"], ["1"]):
        return None
    path = Path(database)
    return ((root or Path.cwd()) / path).resolve() if not path.is_absolute() else path


def sqlite_connect_file(url: str) -> Path | None:
    """The file `sqlite3.connect` opens for `url` as the engine (comms.db.engine) does: an
    SQLite file named with SQLAlchemy's own driver (pysqlite) and no query. None otherwise,
    as for an in-memory database: such callers take the path through SQLAlchemy.

    A build reads and writes the publishing state in the file this names (comms.db.driver):
    tests/test_database_url.py compares it with the engine's for every URL form."""
    parsed = _parse(url)
    if parsed is None or parsed.backend != "sqlite" or parsed.driver not in ("", "pysqlite"):
        return None
    return None if parsed.query else sqlite_file(url)


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
    parsed = _parse(url)
    if parsed is not None and parsed.simple:
        # As SQLAlchemy's URL.render_as_string writes it (the same quoting).
        return f"{url.split('://', 1)[0]}://{quote(f'/{path}', safe=' +/')}"
    from sqlalchemy.engine import make_url  # the rare URL with a host or options

    return make_url(url).set(database=str(path)).render_as_string(hide_password=False)


def database_password(url: str) -> str | None:
    """The password a database URL holds (a secret: masked in logs), if any."""
    parsed = _parse(url)
    return None if parsed is None else parsed.password


#: Keyword parameters of `psycopg.connect` itself, not libpq's: a URL's query that names one
#: is left to the engine.
_PSYCOPG_OWN = frozenset(
    {"autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory", "conninfo"}
)


def server_defaults(url: str) -> dict[str, Any]:
    """The SERVER_DEFAULTS a PostgreSQL URL (any driver) does not set in its query; none for
    another database."""
    parsed = _parse(url)
    return {} if parsed is None else _server_defaults(parsed)


def _server_defaults(parsed: _Parts) -> dict[str, Any]:
    if parsed.backend != "postgresql":
        return {}
    return {key: value for key, value in SERVER_DEFAULTS.items() if key not in parsed.query}


def psycopg_arguments(url: str, connect_timeout: int | None = None) -> dict[str, Any] | None:
    """The keyword arguments for `psycopg.connect` that the engine (comms.db.engine, with
    SQLAlchemy's psycopg dialect and `server_defaults`) gives it for `url`; `connect_timeout`
    where the URL sets none, if given. None for another database or driver, and where
    SQLAlchemy reads more into the URL (several hosts, a host with its port in the query, a
    repeated query key): such callers take the path through SQLAlchemy.

    Written for SQLAlchemy 2.1, whose `postgresql://` is psycopg; 2.0's is psycopg2, which
    libpq reads the same arguments for. The server stamp and a build's reads and writes of
    the publishing state (comms.db.driver) connect with these: where they differed from the
    engine's, a build would read and write another database than a send. So
    tests/test_database_url.py compares them with the engine's for every URL form, and a new
    form the engine reads goes into its table."""
    parsed = _parse(url)
    if parsed is None or parsed.backend != "postgresql" or parsed.driver not in ("", "psycopg"):
        return None
    if any(len(values) > 1 for values in parsed.query.values()):
        return None
    if _PSYCOPG_OWN & set(parsed.query):
        return None  # psycopg's own parameters (the engine's dialect sets some itself)
    if parsed.host is not None and "," in parsed.host:
        return None
    # One host (a name, an address or a socket folder) and one port in the query are passed
    # through as they are; anything else there is split by the dialect.
    host = parsed.query.get("host", [""])[0]
    port = parsed.query.get("port", ["0"])[0]
    if "," in host or ":" in host or not port.isdigit():
        return None
    named = {
        "user": parsed.username,
        "password": parsed.password,
        "host": parsed.host,
        "port": parsed.port,
        "dbname": parsed.database,
    }
    # As `URL.translate_connect_args`: an empty part is left out, like a missing one.
    arguments: dict[str, Any] = {key: value for key, value in named.items() if value}
    arguments.update({key: values[0] for key, values in parsed.query.items()})
    defaults = _server_defaults(parsed)
    if connect_timeout is not None and "connect_timeout" in defaults:
        defaults["connect_timeout"] = connect_timeout
    return {**defaults, **arguments}


def psycopg_connection(url: str, connect_timeout: int | None = None) -> Any | None:
    """A psycopg connection in autocommit to `url`, with `psycopg_arguments(url,
    connect_timeout)`: the server stamp's and a build's own (comms.db.driver). None where the
    engine alone reads the URL, or psycopg is missing; psycopg's errors pass through."""
    arguments = psycopg_arguments(url, connect_timeout)
    if arguments is None:
        return None
    try:
        import psycopg
    except ImportError:
        return None
    return psycopg.connect(autocommit=True, **arguments)
