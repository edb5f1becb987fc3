"""Restores that cannot half-work: `comms restore` refuses while comms runs on the database, and
the PostgreSQL rollback in docs/operations.md, run line by line as written."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.core.config import load_config
from comms.db.engine import make_engine, upgrade
from comms.db.store import open_store
from comms.sending.campaign import prepare

from .ledgerkit import make_config, run_cli, schema_drift
from .pgcluster import Cluster, cluster_fixture  # noqa: F401  (the fixture `cluster`)
from .schedkit import SECRET
from .smtp_servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SQLITE = pytest.mark.sqlite_only("`comms restore` copies SQLite files; PostgreSQL has pg_restore")


def _add(root: Path, address: str) -> None:
    code, _, err = run_cli(
        root, "subscribers", "add", address, "--confirmed", "--consent-note", "Test"
    )
    assert code == 0, err


def _backed_up(root: Path) -> Path:
    """A backup with one subscriber; a second one added after it."""
    _add(root, "eins@example.org")
    backup = root / "backups" / "comms-1.db"
    assert run_cli(root, "backup", str(backup))[0] == 0
    _add(root, "zwei@example.org")
    return backup


@SQLITE
@pytest.mark.slow
def test_restore_refuses_while_comms_serve_runs_on_the_database(site_copy: Path) -> None:
    backup = _backed_up(site_copy)
    serve = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(site_copy / "comms.toml"), "serve",
         "--port", str(free_port())],
        env=os.environ | {"COMMS_SECRET_KEY": SECRET},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        assert "(with the scheduler; Ctrl+C stops)" in serve.stdout.readline()
        code, out, err = run_cli(site_copy, "restore", str(backup))
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    database = site_copy / "var" / "comms.db"
    assert code == 1 and out == "", out
    assert re.fullmatch(
        rf"error: {re.escape(str(database))} is in use by another comms process: the scheduler "
        r"runs in [^ ]+:\d+:[0-9a-f]{8} \(last heartbeat \d\d:\d\d:\d\d UTC\)\. Stop `comms "
        r"serve`, `comms worker` and every `comms send` on this database, then restore "
        r"\(nothing was changed\)\n",
        err,
    ), err
    assert run_cli(site_copy, "subscribers", "show", "zwei@example.org")[0] == 0  # untouched
    # Once comms serve has stopped (and given its lease back), the restore goes through.
    code, out, err = run_cli(site_copy, "restore", str(backup))
    assert code == 0, err
    assert run_cli(site_copy, "subscribers", "show", "zwei@example.org")[0] != 0


@SQLITE
def test_restore_refuses_while_a_live_run_holds_claims(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    backup = _backed_up(site_copy)
    store = open_store(load_config(site_copy / "comms.toml"))
    campaign, _ = prepare(store, "2020-02-newsletter", "hash", [], [])
    now = now_utc()
    # A worker on another host: alive as far as this host can tell, until its lease ends.
    elsewhere = "worker-b:4242:0123abcd"
    assert len(store.ledger.claim(campaign.id, elsewhere, 1, now, now + timedelta(minutes=5)))
    store.close()
    code, _, err = run_cli(site_copy, "restore", str(backup))
    assert code == 1
    assert f"in use by another comms process: {elsewhere} is sending 1 delivery(ies). " in err
    # The same claim of a process on this host that is gone counts for nobody.
    engine = make_engine(load_config(site_copy / "comms.toml").database_url)
    with engine.begin() as conn:
        gone = f"{os.uname().nodename}:{2**22 + 17}:0123abcd"
        conn.execute(sa.text("UPDATE deliveries SET claimed_by = :o"), {"o": gone})
    engine.dispose()
    code, _, err = run_cli(site_copy, "restore", str(backup))
    assert code == 0, err


def _recipe() -> list[str]:
    """The shell lines of the PostgreSQL backup and rollback in docs/operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "pg_restore" in b)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


@pytest.mark.postgresql_only("the rollback recipe is PostgreSQL's (dropdb, pg_restore)")
@pytest.mark.slow
def test_the_documented_postgresql_rollback_leaves_no_newer_table_behind(
    tmp_path: Path, cluster: Cluster
) -> None:
    """A backup taken at 0005, the database upgraded past it (0006 adds tables), then rolled
    back with the doc's lines: the old schema alone comes back, and comms migrates it again."""
    if not shutil.which("pg_dump", path=cluster.environ()["PATH"]):
        pytest.skip("no pg_dump/pg_restore (Debian package postgresql-client)")
    cluster.execute("CREATE ROLE comms LOGIN")
    url = cluster.url(user="comms")
    engine = make_engine(url)
    upgrade(engine, target="0005_desk")
    engine.dispose()
    dump, *rollback = _recipe()
    assert dump.startswith("pg_dump ") and rollback[0] == "dropdb comms", rollback
    subprocess.run(["bash", "-c", dump], cwd=tmp_path, env=cluster.environ(), check=True)
    # The file of an earlier day, as the doc's restore line names it.
    (dumped,) = tmp_path.glob("comms-*.dump")
    dumped.rename(tmp_path / re.findall(r"comms-[\d-]+\.dump", rollback[-1])[0])
    open_store(make_config(tmp_path, database_url=url)).close()  # the upgrade to the newest
    for line in rollback:
        subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=cluster.environ(), check=True,
            capture_output=True,
        )  # fmt: skip
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("0005_desk",)
        ]
        assert not sa.inspect(conn).has_table("send_budget")  # 0006's: gone with the rest
    engine.dispose()
    store = open_store(make_config(tmp_path, database_url=url))  # migrates the old schema again
    assert schema_drift(store) == []
    store.close()
