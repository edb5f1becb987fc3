"""One parse of database URLs: which SQLite file a URL names, for every SQLite driver."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from comms.core.config import Config, load_config
from comms.core.database_url import database_exists, sqlite_file
from comms.core.errors import ConfigError
from comms.core.files import exposure_warnings
from comms.db.backup import sqlite_path
from comms.db.engine import make_engine

from .conftest import ROOT

URLS = ["sqlite:///var/comms.db", "sqlite+pysqlite:///var/comms.db"]


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The usual umask 022, under which new files are readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _config(folder: Path, url: str) -> Config:
    path = folder / "comms.toml"
    path.write_text(f'database_url = "{url}"\n', encoding="utf-8")
    return load_config(path, environ={})


@pytest.mark.sqlite_only("which file a SQLite URL names, and that file's mode")
@pytest.mark.parametrize("url", URLS)
def test_a_relative_sqlite_path_is_relative_to_the_config_folder_for_every_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    config = _config(site, url)
    database = site / "var" / "comms.db"
    assert config.database_url == url.replace("///var", f"///{site}/var")
    assert sqlite_file(config.database_url) == database
    assert database_exists(config.database_url) is False  # a missing file: no database yet
    engine = make_engine(config.database_url)
    with engine.connect():
        pass
    engine.dispose()
    assert database.is_file() and list(elsewhere.iterdir()) == []
    # Created 0600 in a 0700 folder before SQLite opened it, whatever the umask.
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    assert database_exists(config.database_url) is True
    assert sqlite_path(config.database_url) == database  # what backup and restore copy
    database.chmod(0o644)
    assert any(str(database) in w for w in exposure_warnings(config))


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://", "postgresql+psycopg://u@db/comms"],
)
def test_urls_without_a_file(url: str) -> None:
    assert sqlite_file(url) is None
    assert database_exists(url) is True  # nothing to look for: a server is assumed to exist


def test_an_absolute_path_is_kept(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite+pysqlite:///{tmp_path}/a.db?timeout=5") == tmp_path / "a.db"
    assert sqlite_file("sqlite:///a.db", tmp_path) == (tmp_path / "a.db").resolve()


def test_an_error_about_the_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        make_engine("postgresql+nosuchdriver://comms:topsecret@db.example.org/comms")
    assert "topsecret" not in str(info.value.problems)
    assert "comms:***@db.example.org" in info.value.problems[0]


def test_a_postgres_url_as_hosting_providers_write_it_is_read(tmp_path: Path) -> None:
    url = "postgres://comms:pw@db.example.org:5432/comms?sslmode=require"
    (tmp_path / "comms.toml").write_text("")
    config = load_config(tmp_path / "comms.toml", environ={"COMMS_DATABASE_URL": url})
    assert config.database_url == "postgresql" + url.removeprefix("postgres")
    # Not "Can't load plugin: sqlalchemy.dialects:postgres".
    assert make_engine(config.database_url).url.get_backend_name() == "postgresql"
    with pytest.raises(ConfigError) as info:  # a URL that does not even parse
        make_engine("postgresql://comms:pw@db.example.org:port/comms")
    assert info.value.problems[0].startswith("database_url: cannot open 'postgresql://comms:***@")


def test_no_second_parse_of_sqlite_urls() -> None:
    """SQLite URLs are taken apart by comms.core.database_url alone (five ways before)."""
    pattern = re.compile(r"""(startswith|removeprefix)\(["']sqlite|\[len\(["']sqlite""")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted([*ROOT.glob("comms/**/*.py"), *ROOT.glob("tests/*.py")])
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


AS_SQLALCHEMY = [
    "sqlite:///var/comms.db",
    "sqlite+pysqlite:///var/comms.db",
    "sqlite:////abs/comms.db",
    "sqlite:///var/my%20db.db",
    "sqlite:///var/a+b db.db",
    "sqlite:///var/comms.db?timeout=5",
    "sqlite:///var/comms.db?",
    "sqlite:///file:var/comms.db?uri=true",
    "sqlite:///file:var/comms.db?uri=1&mode=ro",
    "sqlite:///:memory:",
    "sqlite://",
    "sqlite://user:pw@/var/comms.db",
    "postgresql+psycopg://comms:to%40p%3Asecret@db.example.org:5432/comms?sslmode=require",
    "postgresql://comms:pw@[::1]:5432/comms",
    "postgresql://comms@db/comms",
    "postgresql://comms:@db/comms",
    "postgresql://comms:pw@db.example.org:port/comms",
    "not a url",
    "mysql+pymysql://u:p@h/d?charset=utf8mb4&charset=latin1",
]


@pytest.mark.parametrize("url", AS_SQLALCHEMY)
def test_urls_read_as_sqlalchemy_reads_them(url: str, tmp_path: Path) -> None:
    """comms's own parse (no SQLAlchemy at start-up) agrees with `make_url` on every part
    comms reads: the file, the password and the URL with its path made absolute."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from comms.core.database_url import database_password, resolve_database_url

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        assert database_password(url) is None and sqlite_file(url) is None
        assert resolve_database_url(url, tmp_path) == url
        return
    assert database_password(url) == parsed.password
    database = parsed.database
    uri = parsed.query.get("uri") in ("true", "1")
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or uri:
        assert sqlite_file(url, tmp_path) is None
        assert resolve_database_url(url, tmp_path) == url
        return
    path = Path(database)
    absolute = path if path.is_absolute() else (tmp_path / path).resolve()
    assert sqlite_file(url, tmp_path) == absolute
    expected = parsed.set(database=str(absolute)).render_as_string(hide_password=False)
    assert resolve_database_url(url, tmp_path) == expected
    assert make_url(expected).database == str(absolute)


def test_reading_the_configuration_does_not_load_sqlalchemy(tmp_path: Path) -> None:
    """A command that opens no database (a skipped build, `comms check`) starts without it."""
    import subprocess
    import sys

    (tmp_path / "comms.toml").write_text('database_url = "sqlite:///var/x.db"\n')
    code = (
        "import sys; from comms.core.config import load_config; "
        "c = load_config(); c.secret_values(); print(c.database_url); "
        "print('sqlalchemy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [f"sqlite:///{tmp_path.resolve()}/var/x.db", "False"]


#: PostgreSQL URLs with what `psycopg_arguments` does with them: True where it gives psycopg
#: what the engine does, False where it leaves the URL to SQLAlchemy.
AS_PSYCOPG = {
    "postgresql+psycopg://comms:to%40p%3Asecret@db.example.org:5432/comms?sslmode=require": True,
    "postgresql://comms:pw@[::1]:5432/comms": True,
    "postgresql://comms@db/comms": True,
    "postgresql://comms:@db/comms": True,
    "postgresql+psycopg://comms@127.0.0.1/comms?connect_timeout=3&application_name=comms": True,
    "postgresql+psycopg:///comms": True,
    "postgresql+psycopg:///comms?host=/var/run/postgresql": True,
    "postgresql+psycopg:///comms?host=/var/run/postgresql&port=5433": True,
    "postgresql+psycopg://comms@db:5432/comms?port=5433": True,
    "postgresql+psycopg:///comms?host=db:5433": False,
    "postgresql+psycopg:///comms?host=a,b&port=5432,5433": False,
    "postgresql+psycopg://comms@db/comms?host=a:5432&host=b:5433": False,
    "postgresql+psycopg://comms@db/comms?sslmode=require&sslmode=disable": False,
    "postgresql+psycopg://comms@db/comms?autocommit=true": False,
    "postgresql+psycopg://comms@db/comms?prepare_threshold=0": False,
    "postgresql+psycopg2://comms@db/comms": False,
    "postgresql+asyncpg://comms@db/comms": False,
    "postgresql://comms:pw@db.example.org:port/comms": False,
    "sqlite:///var/comms.db": False,
}


class _Connected(Exception):
    """What the patched `psycopg.connect` raises, with the arguments it was given."""


@pytest.mark.parametrize(("url", "taken"), AS_PSYCOPG.items())
def test_psycopg_gets_what_the_engine_gives_it(
    url: str, taken: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skipped build's query on a server (comms.core.server_state) connects without
    SQLAlchemy, with the arguments the engine's connection passes to `psycopg.connect`."""
    import psycopg

    from comms.core.database_url import psycopg_arguments

    found = psycopg_arguments(url)
    if not taken:
        assert found is None
        return
    given: dict[str, object] = {}

    def connect(*args: object, **kwargs: object) -> None:
        assert args in ((), ("",))
        given.update(kwargs)
        raise _Connected

    monkeypatch.setattr(psycopg, "connect", connect)
    engine = make_engine(url)
    with pytest.raises(_Connected):
        engine.connect()
    engine.dispose()
    given.pop("context", None)  # the dialect's type adapters, not a connection argument
    assert found == given
    assert psycopg_arguments(url, connect_timeout=2) == {
        **given,
        "connect_timeout": given["connect_timeout"] if "connect_timeout=" in url else 2,
    }


#: SQLite URLs with what `sqlite_connect_file` does with them: True where `sqlite3.connect` gets
#: from it what the engine gives it, False where it leaves the URL to SQLAlchemy.
AS_SQLITE = {
    "sqlite:///{tmp}/comms.db": True,
    "sqlite+pysqlite:///{tmp}/comms.db": True,
    "sqlite:///{tmp}/comms.db?timeout=5": False,
    "sqlite:///file:{tmp}/comms.db?uri=true": False,
    "sqlite+pysqlcipher://:secret@/{tmp}/comms.db": False,
    "sqlite://": False,
    "sqlite:///:memory:": False,
    "postgresql:///comms": False,
}


@pytest.mark.parametrize(("url", "taken"), AS_SQLITE.items())
def test_sqlite3_gets_what_the_engine_gives_it(
    url: str, taken: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a build opens SQLite without SQLAlchemy (comms.db.driver), the file and the
    arguments are those the engine's connection passes to `sqlite3.connect`."""
    import sqlite3.dbapi2

    from comms.core.database_url import sqlite_connect_file
    from comms.db.driver import connect

    url = url.replace("{tmp}", str(tmp_path))
    found = sqlite_connect_file(url)
    if not taken:
        assert found is None
        return
    calls: list[tuple[object, ...]] = []

    def spy(*args: object, **kwargs: object) -> None:
        calls.append((args, kwargs))
        raise _Connected

    monkeypatch.setattr(sqlite3.dbapi2, "connect", spy)
    monkeypatch.setattr(sqlite3, "connect", spy)
    engine = make_engine(url)
    with pytest.raises(_Connected):
        engine.connect()
    engine.dispose()
    with pytest.raises(_Connected):
        connect(url)
    assert found == tmp_path / "comms.db"
    assert calls[0] == calls[1] == ((str(found),), {"check_same_thread": False})
