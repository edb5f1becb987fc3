"""One database fixture for the whole suite: every test that touches the database runs on SQLite
and on PostgreSQL (a throwaway cluster from Debian's binaries).

A test module or test says it touches the database with `@pytest.mark.database`; it then runs
twice, `[sqlite]` and `[postgresql]` (the latter marked slow, so `make quick` stays SQLite).
A test that only makes sense on one says why: `@pytest.mark.sqlite_only("…")` or
`@pytest.mark.postgresql_only("…")`.

How the PostgreSQL run reaches the code: every configuration's database comes from
`Config.database_url`. In the `[postgresql]` run that property maps each SQLite file a test's
configurations name (`ROOT/var/comms.db`, `folder/comms.db`, …) to a fresh database of its own
on the cluster, so two folders still mean two databases and one folder always the same one.
Commands run as subprocesses get the mapped URL through `database_env(config_path)`.

Guards, so that a run cannot quietly test the wrong thing: a test not marked `database` fails
if it connects to a database file, and a `[postgresql]` run fails if anything in it connected
to an SQLite file anyway.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from comms.core.config import Config, load_config
from comms.core.database_url import sqlite_file

BACKENDS = ("sqlite", "postgresql")
_SQLITE_FILE = "sqlite:///"
_names = itertools.count()
_original_url = Config.database_url.fget  # type: ignore[attr-defined]
#: The backend of the test now running (one test at a time per process, also under xdist).
_current: Databases | None = None
#: SQLite files opened outside any test (by a module- or session-scoped fixture).
_outside: list[str] = []


def _sqlite_path(url: str) -> str | None:
    path = sqlite_file(url)
    return None if path is None else str(path)


class Databases:
    """The backend of one test and, on PostgreSQL, the databases it created."""

    def __init__(self, backend: str | None, server: str | None = None) -> None:
        self.backend = backend
        self.server = server
        self.created: dict[str, str] = {}
        self.sqlite_files: list[str] = []
        self.folders: list[str] = []

    @property
    def postgresql(self) -> bool:
        """True in a test's `[postgresql]` run."""
        return self.backend == "postgresql"

    def url_for(self, url: str) -> str:
        """The URL a configuration naming `url` uses in this run (PostgreSQL for a file)."""
        path = _sqlite_path(url)
        if not self.postgresql or path is None:
            return url
        path = os.path.realpath(path)  # one file, however it is spelt: one database
        if path not in self.created:
            self.created[path] = self._create()
        return self.created[path]

    def fresh(self) -> str:
        """A database URL no configuration names yet (a new file, or a new PG database)."""
        # A folder of its own: a fixed path would be shared by every test run on the machine.
        folder = tempfile.mkdtemp(prefix="comms-fresh-")
        self.folders.append(folder)
        return self.url_for(f"{_SQLITE_FILE}{folder}/comms.db")

    def _create(self) -> str:
        assert self.server is not None
        name = f"comms_t{next(_names)}"
        with psycopg.connect(_plain(self.server, "postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"{self.server}/{name}"

    def drop(self) -> None:
        """Drop the databases this test created (connections still open are closed)."""
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        if not self.created or self.server is None:
            return
        with psycopg.connect(_plain(self.server, "postgres"), autocommit=True) as conn:
            for url in self.created.values():
                conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def _plain(server: str, database: str) -> str:
    return server.replace("postgresql+psycopg://", "postgresql://") + f"/{database}"


def _mapped_url(config: Config) -> str:
    url: str = _original_url(config)
    return url if _current is None else _current.url_for(url)


def _seen_connection(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__ == "sqlite3":
        # sqlite3 does not tell its file; the main database's path is in PRAGMA database_list.
        row = dbapi_connection.execute("PRAGMA database_list").fetchone()
        if row and row[2]:
            (_outside if _current is None else _current.sqlite_files).append(row[2])


def database_env(config_path: Path) -> dict[str, str]:
    """The environment a `comms` subprocess needs to use this run's database for a config."""
    if _current is None or not _current.postgresql:
        return {}
    config = load_config(config_path, environ={})
    return {"COMMS_DATABASE_URL": config.database_url}


def engine_for(config_path: Path) -> sa.Engine:
    """An engine on this run's database for the configuration at `config_path`."""
    return sa.create_engine(load_config(config_path, environ={}).database_url)


def every_row(engine: sa.Engine) -> str:
    """Every row of every table as text: what a dump of the database would show of its data."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return "\n".join(
            f"{table.name}: {tuple(row)}"
            for table in sorted(meta.tables.values(), key=lambda t: t.name)
            for row in conn.execute(sa.select(table))
        )


def current() -> Databases:
    """The running test's backend (for helpers that are not fixtures)."""
    assert _current is not None, "only inside a test"
    return _current


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Run each test marked `database` once per backend it makes sense on."""
    only = [
        backend
        for backend in BACKENDS
        if metafunc.definition.get_closest_marker(f"{backend}_only") is not None
    ]
    if not only and metafunc.definition.get_closest_marker("database") is None:
        return
    for backend in only:
        marker = metafunc.definition.get_closest_marker(f"{backend}_only")
        assert marker is not None and marker.args, f"{backend}_only needs a reason: say why"
    params = [
        pytest.param(backend, marks=pytest.mark.slow) if backend == "postgresql" else backend
        for backend in (only or BACKENDS)
    ]
    metafunc.parametrize("database", params, indirect=True)


@pytest.fixture(autouse=True)
def database(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Databases]:
    """This test's backend: `[sqlite]`, `[postgresql]`, or none for tests without a database."""
    global _current
    backend: str | None = getattr(request, "param", None)
    server = str(request.getfixturevalue("pg_server")) if backend == "postgresql" else None
    databases = Databases(backend, server)
    monkeypatch.setattr(Config, "database_url", property(_mapped_url))
    _current = databases
    try:
        yield databases
    finally:
        _current = None
        databases.drop()
    if _outside:
        outside = _outside.copy()
        _outside.clear()
        pytest.fail(
            f"a module- or session-scoped fixture opened the database {outside[0]}: such a "
            "fixture cannot follow the backend; give it function scope and mark its tests "
            "`@pytest.mark.database`"
        )
    files = databases.sqlite_files
    if backend is None and files:
        pytest.fail(
            f"{request.node.nodeid} opened the database {files[0]}: mark it "
            "`@pytest.mark.database` so that it runs on SQLite and PostgreSQL"
        )
    if backend == "postgresql" and files:
        pytest.fail(f"the [postgresql] run opened an SQLite file anyway: {files[0]}")


sa.event.listen(sa.pool.Pool, "connect", _seen_connection)
