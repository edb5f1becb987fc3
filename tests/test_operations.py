"""Operating comms: upgrades from the first schema (0001) with data in it, the state files
carried into the database, `comms backup` / `comms restore`, pg_dump's round trip, `comms
worker`."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.content.site import read_site
from comms.core.clock import now_utc
from comms.core.config import load_config
from comms.core.settings import Delivery
from comms.db.engine import make_engine, upgrade
from comms.db.publishing import DbPublishState
from comms.db.store import open_store
from comms.db.tables import campaigns, consent, deliveries, subscribers
from comms.publish.build import collect
from comms.publish.producer import Build
from comms.publish.state import FileState
from comms.sending.campaign import send
from comms.sending.run import SendOptions

from .conftest import _binary
from .databases import Databases
from .ledgerkit import Sink, build, make_config, run_cli, schema_drift
from .smtp_servers import Handler, free_port, smtp_server


@pytest.fixture
def database_url(database: Databases, tmp_path: Path) -> str:
    """The URL of the database `make_config(tmp_path)` uses in this run (SQLite or PostgreSQL)."""
    return database.url_for(f"sqlite:///{tmp_path / 'var' / 'comms.db'}")


def _fill_first_schema(url: str) -> None:
    """People, consent, a campaign half sent: as the first released version wrote them."""
    engine = make_engine(url)
    upgrade(engine, "0001")
    now = now_utc()
    with engine.begin() as conn:
        for n, status in enumerate(("active", "active", "pending")):
            sid = conn.execute(
                sa.insert(subscribers)
                .values(
                    uid=f"uid{n}",
                    email=f"alt{n}@example.org",
                    suppression_key=f"key{n}",
                    language="de",
                    status="pending",
                    created_at=now,
                    updated_at=now,
                )  # fmt: skip
                .returning(subscribers.c.id)
            ).scalar_one()
            cid = conn.execute(
                sa.insert(consent)
                .values(subscriber_id=sid, action="import", at=now, source="alt")
                .returning(consent.c.id)
            ).scalar_one()
            conn.execute(
                sa.update(subscribers)
                .where(subscribers.c.id == sid)
                .values(status=status, consent_id=cid)
            )
        campaign = conn.execute(
            sa.insert(campaigns)
            .values(
                slug="alt",
                content_hash="h",
                status="waiting",
                recipients=2,
                created_at=now,
                updated_at=now,
            )  # fmt: skip
            .returning(campaigns.c.id)
        ).scalar_one()
        for sid, status in ((1, "sent"), (2, "queued")):
            conn.execute(
                sa.insert(deliveries).values(
                    campaign_id=campaign,
                    subscriber_id=sid,
                    status=status,
                    queued_at=now - timedelta(hours=1),
                )  # fmt: skip
            )
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0001"
    engine.dispose()


@pytest.mark.database
def test_a_first_schema_database_with_data_upgrades_to_the_newest(
    tmp_path: Path, database_url: str
) -> None:
    _fill_first_schema(database_url)
    store = open_store(make_config(tmp_path, database_url=database_url))
    assert schema_drift(store) == []
    person = store.find("alt0@example.org")
    assert person is not None and person.status == "active"
    campaign = store.ledger.campaign("alt")
    assert campaign is not None and store.ledger.counts(campaign.id) == {"sent": 1, "queued": 1}
    sink = Sink()
    report = send(store, campaign, build, sink.opener, SendOptions.of(Delivery(rate=100)))
    assert report.counts == {"sent": 2}
    assert sink.per_address() == {"alt1@example.org": 1}


@pytest.mark.sqlite_only(
    "`comms backup` is SQLite's online backup; PostgreSQL's is pg_dump, tested below"
)
def test_backup_and_restore_round_trip_on_sqlite(site_copy: Path) -> None:
    assert run_cli(site_copy, "subscribers", "add", "eins@example.org", "--confirmed",
                   "--consent-note", "Test")[0] == 0  # fmt: skip
    backup = site_copy / "backups" / "comms-1.db"
    code, out, err = run_cli(site_copy, "backup", str(backup))
    assert code == 0, err
    assert out.startswith("backed up sqlite:///") and f"to {backup} (" in out
    assert backup.stat().st_mode & 0o777 == 0o600  # a copy of personal data, whatever the umask
    assert run_cli(site_copy, "backup", str(backup))[2] == (
        f"error: {backup}: exists already; choose a new file\n"
    )
    assert run_cli(site_copy, "subscribers", "add", "zwei@example.org", "--confirmed",
                   "--consent-note", "Test")[0] == 0  # fmt: skip
    code, out, err = run_cli(site_copy, "restore", str(backup))
    assert code == 0, err
    assert out.startswith("restored sqlite:///")
    assert run_cli(site_copy, "subscribers", "show", "eins@example.org")[0] == 0
    assert run_cli(site_copy, "subscribers", "show", "zwei@example.org")[0] != 0
    junk = site_copy / "junk.db"
    junk.write_bytes(b"no database")
    code, _, err = run_cli(site_copy, "restore", str(junk))
    assert code == 1 and err.startswith(f"error: {junk}: not a comms database")
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT count(*) FROM subscribers").fetchone() == (1,)
    conn.close()


def test_backup_on_postgresql_points_at_pg_dump(site_copy: Path) -> None:
    env = {"COMMS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/comms"}
    code, _, err = run_cli(site_copy, "backup", str(site_copy / "b.dump"), env=env)
    assert code == 1 and "pg_dump --format=custom" in err
    code, _, err = run_cli(site_copy, "restore", str(site_copy / "b.dump"), env=env)
    assert code == 1 and "recreate the database (`dropdb DBNAME`, `createdb DBNAME`)" in err


@pytest.mark.postgresql_only("pg_dump and pg_restore are PostgreSQL's own tools")
def test_pg_dump_and_pg_restore_round_trip(
    tmp_path: Path, pg_url: str, database: Databases
) -> None:
    """What docs/operations.md tells PostgreSQL users to do instead of `comms backup`."""
    dump, restore = _binary("pg_dump"), _binary("pg_restore")
    if not dump or not restore:
        pytest.skip("no pg_dump/pg_restore (Debian package postgresql-client)")
    _fill_first_schema(pg_url)
    open_store(make_config(tmp_path, database_url=pg_url)).close()
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    target = database.fresh()
    file = tmp_path / "comms.dump"
    subprocess.run([dump, "--format=custom", f"--file={file}", plain], check=True)
    restored = target.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run([restore, "--clean", "--if-exists", f"--dbname={restored}", str(file)],
                   check=True, capture_output=True)  # fmt: skip
    # The key goes with the data: a restored database needs the key it was set up with.
    (tmp_path / "b" / "var").mkdir(parents=True)
    shutil.copy2(tmp_path / "var" / "secret.key", tmp_path / "b" / "var" / "secret.key")
    store = open_store(make_config(tmp_path / "b", database_url=target))
    person = store.find("alt0@example.org")
    assert person is not None and person.status == "active"
    assert schema_drift(store) == []


@pytest.mark.database
@pytest.mark.slow
def test_an_upgrade_carries_the_state_files_into_the_database(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    # Without a database: var/feeds-state.json, as older versions kept it.
    collect(Build(config, site, FileState(config.root)))
    feeds = site_copy / "var" / "feeds-state.json"
    data = json.loads(feeds.read_text(encoding="utf-8"))
    for entry in data["items"].values():
        entry["sequence"] = 7
    feeds.write_text(json.dumps(data), encoding="utf-8")
    hub = ("https://hub.example.org/", "https://newsletter.example.org/feed.xml")
    (site_copy / "var" / "websub-pending.json").write_text(json.dumps([hub]), encoding="utf-8")
    assert not (site_copy / "var" / "comms.db").exists()
    # The first command that creates the database carries the files over; from then on the
    # files are not read (a build without a database would still use them).
    code, _, err = run_cli(site_copy, "subscribers", "add", "eins@example.org")
    assert code == 0, err
    feeds.unlink()
    code, _, err = run_cli(site_copy, "build")
    assert code == 0, err
    assert not feeds.exists()
    state = DbPublishState.open(config)
    rows = state.feed_rows()
    assert set(rows) == set(data["items"]) and {row[1] for row in rows.values()} == {7}
    assert state.pending_pings() == {hub}
    state.close()
    assert "SEQUENCE:7" in (site_copy / "public" / "events.ics").read_text(encoding="utf-8")


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.usefixtures("without_approval")
def test_a_worker_sends_what_is_due_in_any_campaign(site_copy: Path) -> None:
    """`comms worker --once`: the campaign a failed `comms send` left queued goes out."""
    rows = "".join(f"leser{n}@example.org\n" for n in range(5))
    (site_copy / "people.csv").write_text("email\n" + rows, encoding="utf-8")
    assert run_cli(site_copy, "subscribers", "import", str(site_copy / "people.csv"),
                   "--confirmed", "--consent-note", "Test")[0] == 0  # fmt: skip
    closed = {"COMMS_TRANSPORT": f"smtp://127.0.0.1:{free_port()}"}
    code, _, err = run_cli(site_copy, "send", "2020-02-newsletter", "--now", env=closed)
    assert code == 1 and "nothing sent" not in err, err  # stopped by the server, not refused
    handler = Handler()
    with smtp_server(handler) as port:
        env = {"COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}"}
        code, out, err = run_cli(site_copy, "worker", "--once", env=env)
    assert code == 0, err
    # Log lines (docs/configuration.md, `[log]`): time, level, command and process id, logger.
    head = r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO comms worker\[\d+\] comms\.worker: "
    assert [re.sub(head, "", line) for line in err.splitlines()] == [
        "worker: looking for due deliveries every 10 s",
        "2020-02-newsletter: 5 sent, 0 failed, 0 skipped, 0 waiting",
    ]
    assert out == ""
    assert len(handler.received) == 5
