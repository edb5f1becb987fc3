"""The publishing state in the database (comms.db.publishing): through an engine and over a
connection of its own (a build's), the same rows with the same types, on both databases."""

from __future__ import annotations

import re
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.database_url import sqlite_connect_file
from comms.core.errors import ConfigError, LocalError
from comms.db.driver import SQLITE_PRAGMAS, connect
from comms.db.publishing import DbPublishState, DirectRunner, EngineRunner, FeedRow
from comms.db.store import open_store
from comms.db.tables import feed_items
from comms.sending.campaign import prepare

from .ledgerkit import make_config
from .small_disk import fill, small_disk

pytestmark = pytest.mark.database

BERLIN = timezone(timedelta(hours=1))
ROWS = {
    "event/a": ("d" * 64, 1, datetime(2020, 3, 1, 9, 30, 0, 123456, tzinfo=UTC), None),
    # Given in another offset: kept as the same instant, read back in UTC.
    "event/b": (
        "e" * 64,
        2,
        datetime(2020, 3, 2, 10, 0, tzinfo=BERLIN),
        datetime(2020, 3, 5, 0, 0, 0, 1, tzinfo=UTC),
    ),
    "practice/ä": ("f" * 64, 3, datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC), None),
}


def _in_utc(rows: dict[str, FeedRow]) -> dict[str, FeedRow]:
    return {
        uid: (d, n, seen.astimezone(UTC), changed and changed.astimezone(UTC))
        for uid, (d, n, seen, changed) in rows.items()
    }


def test_a_build_opens_its_own_connection_and_both_paths_read_the_same_rows(
    tmp_path: Path,
) -> None:
    """Rows one path writes, the other reads alike, and so does SQLAlchemy's typed select
    (UTCDateTime): aware UTC times to the microsecond, None kept, the same started issues and
    pending notifications."""
    config = make_config(tmp_path)
    store = open_store(config)
    try:
        prepare(store, "2020-02-newsletter", "h", [], [])
        direct = DbPublishState.open(config)
        engine = DbPublishState.of(store.engine)
        try:
            assert isinstance(direct.runner, DirectRunner)
            assert isinstance(engine.runner, EngineRunner)
            direct.save_feed_rows(dict(list(ROWS.items())[:2]))
            engine.save_feed_rows(dict(list(ROWS.items())[2:]))
            expected = _in_utc(ROWS)
            assert direct.feed_rows() == engine.feed_rows() == expected
            for rows in (direct.feed_rows(), engine.feed_rows()):
                assert all(seen.tzinfo is UTC for _, _, seen, _ in rows.values())
            with store.engine.connect() as conn:
                typed = {
                    row.uid: (row.digest, row.sequence, row.seen, row.changed)
                    for row in conn.execute(sa.select(feed_items))
                }
            assert typed == expected
            # An upsert: a changed record replaces the old one, whichever path wrote it.
            moved = ("0" * 64, 9, datetime(2021, 1, 1, tzinfo=UTC), None)
            engine.save_feed_rows({"event/a": moved})
            assert direct.feed_rows()["event/a"] == moved
            assert direct.sent_issues() == engine.sent_issues() == {"2020-02-newsletter"}
            pings = {("https://hub.example.org/", "https://example.org/feed.xml")}
            direct.set_pending_pings(pings)
            assert engine.pending_pings() == pings
            engine.set_pending_pings(set())
            assert direct.pending_pings() == set()
            # The stored values are SQLAlchemy's own (on SQLite: the same text).
            when, then = ROWS["event/b"][2], ROWS["event/b"][3]
            with store.engine.begin() as conn:
                conn.execute(
                    sa.insert(feed_items).values(
                        uid="typed", digest="t", sequence=0, seen=when, changed=then
                    )
                )
                stored = conn.execute(
                    sa.text("SELECT uid, seen, changed FROM feed_items WHERE uid IN (:a, :b)"),
                    {"a": "typed", "b": "event/b"},
                ).all()
            assert len(stored) == 2 and stored[0][1:] == stored[1][1:]
            if store.engine.dialect.name == "sqlite":
                assert stored[0][1:] == ("2020-03-02 09:00:00.000000", "2020-03-05 00:00:00.000001")
            if store.engine.dialect.name == "postgresql":
                assert direct.server_stamp() == engine.server_stamp() is not None
            else:
                assert direct.server_stamp() is None
        finally:
            direct.close()
    finally:
        store.close()


def test_a_failed_write_over_its_own_connection_leaves_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    open_store(config).close()
    state = DbPublishState.open(config)
    try:
        assert isinstance(state.runner, DirectRunner)
        bad = dict(ROWS, **{"event/c": ("a" * 64, 4, None, None)})  # seen may not be NULL
        with pytest.raises(Exception, match="(?i)null|naive|none"):
            state.save_feed_rows(bad)  # type: ignore[arg-type]
        assert state.feed_rows() == {}
        state.save_feed_rows(ROWS)  # and the connection is still usable
        assert len(state.feed_rows()) == 3
    finally:
        state.close()


@pytest.mark.parametrize("recorded", ["0001", "9999"])
def test_a_schema_other_than_the_newest_goes_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: str
) -> None:
    """A schema older than the package's is the engine's to migrate, and one newer is the
    engine's to refuse; a current one is read over a connection of its own."""
    config = make_config(tmp_path)
    open_store(config).close()
    upgraded: list[str] = []
    monkeypatch.setattr(
        "comms.db.engine.upgrade", lambda engine, **_: upgraded.append(engine.dialect.name)
    )
    state = DbPublishState.open(config)
    state.close()
    assert isinstance(state.runner, DirectRunner) and upgraded == []
    engine = sa.create_engine(config.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": recorded})
    engine.dispose()
    state = DbPublishState.open(config)
    state.close()
    assert isinstance(state.runner, EngineRunner) and len(upgraded) == 1


@pytest.mark.sqlite_only("a file that is not there yet, or not a database")
@pytest.mark.parametrize("query", ["", "?timeout=5"], ids=["own", "engine"])
def test_a_missing_file_is_made_private_by_the_engine_and_a_broken_one_is_one_line(
    tmp_path: Path, query: str
) -> None:
    config = make_config(tmp_path)
    config = make_config(tmp_path, database_url=config.database_url + query)
    database = sqlite_connect_file(make_config(tmp_path).database_url)
    assert database is not None and not database.exists()
    state = DbPublishState.open(config)
    try:
        assert isinstance(state.runner, EngineRunner) and state.feed_rows() == {}
    finally:
        state.close()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    again = DbPublishState.open(config)
    again.close()
    assert isinstance(again.runner, EngineRunner if query else DirectRunner)
    database.write_bytes(b"not a database, " * 512)
    with pytest.raises(ConfigError, match="cannot use the database: file is not a database"):
        DbPublishState.open(config)


@pytest.mark.postgresql_only("an option libpq does not know")
@pytest.mark.parametrize("query", ["foo=bar", "foo=bar&foo=baz"], ids=["own", "engine"])
def test_an_unknown_connection_option_is_one_line(tmp_path: Path, query: str) -> None:
    config = make_config(tmp_path)
    url = config.database_url + ("&" if "?" in config.database_url else "?") + query
    with pytest.raises(ConfigError, match='cannot use the database: .*"foo"'):
        DbPublishState.open(make_config(tmp_path, database_url=url))


@pytest.mark.slow
@pytest.mark.sqlite_only("the SQLite file lives on the small disk")
@pytest.mark.parametrize("path", ["own", "engine"])
def test_a_full_disk_during_a_write_is_one_line_on_either_path(tmp_path: Path, path: str) -> None:
    """The write fails whole and says which file and how much space is free."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        database = disk / "comms.db"
        config = make_config(tmp_path, database_url=f"sqlite:///{database}")
        store = open_store(config)
        try:
            # A reader keeps the log files that a connection needs to open on a full disk.
            reader = sqlite3.connect(database)
            reader.execute("SELECT count(*) FROM feed_items").fetchone()
            own = path == "own"
            state = DbPublishState.open(config) if own else DbPublishState.of(store.engine)
            assert isinstance(state.runner, DirectRunner if own else EngineRunner)
            filler = fill(disk)
            rows: dict[str, FeedRow] = {
                f"event/{n}": ("d" * 64, n, datetime(2020, 1, 1, tzinfo=UTC), None)
                for n in range(20_000)
            }
            with pytest.raises(LocalError) as raised:
                state.save_feed_rows(rows)
            assert re.fullmatch(
                rf"cannot write the database {database}: database or disk is full "
                r"\([\d.]+ [kM]?B free\)",
                str(raised.value),
            ), raised.value
            filler.unlink()
            assert state.feed_rows() == {}
            if own:
                state.close()
            reader.close()
        finally:
            store.close()


@pytest.mark.sqlite_only("the engine's SQLite settings")
def test_a_connection_of_its_own_is_set_up_as_the_engines(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = open_store(config)
    try:
        opened = connect(config.database_url)
        assert opened is not None
        own, dialect = opened
        raw = store.engine.raw_connection()
        try:
            theirs = raw.driver_connection
            assert dialect == "sqlite" and theirs is not None
            names = [pragma.split("=")[0] for pragma in SQLITE_PRAGMAS]
            names += ["cache_size", "temp_store", "recursive_triggers"]
            for name in names:
                mine = own.execute(f"PRAGMA {name}").fetchall()
                assert mine == theirs.execute(f"PRAGMA {name}").fetchall(), name
            assert own.isolation_level is None and theirs.isolation_level is None
        finally:
            raw.close()
            own.close()
    finally:
        store.close()


@pytest.mark.sqlite_only("a query in an SQLite URL is the engine's to read")
def test_an_sqlite_url_with_options_goes_through_the_engine(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    open_store(config).close()
    config = make_config(tmp_path, database_url=f"{config.database_url}?timeout=5")
    state = DbPublishState.open(config)
    try:
        assert isinstance(state.runner, EngineRunner)
        assert state.feed_rows() == {}
    finally:
        state.close()
