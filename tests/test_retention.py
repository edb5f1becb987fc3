"""Retention (issue 14): an ended subscription is reduced after `subscribe.retention_days` to
the proof of consent and its withdrawal plus the suppression hash, by the daily housekeeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.audience.subscriptions import reduce_ended
from comms.core.clock import now_utc
from comms.db.tables import metadata, subscribers
from comms.schedule import jobs

from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, open_site, with_subscribers
from .webkit import Web, open_web

pytestmark = pytest.mark.database

ADDRESS = "erika.muster@example.org"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path, subscribe={"keep_ip": True}) as kit:
        yield kit


def everything(engine: sa.Engine) -> str:
    """Every row of every table as text."""
    with engine.connect() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in conn.execute(table.select())
        )


@pytest.mark.usefixtures("without_approval")
def test_housekeeping_reduces_unsubscribed_people_after_the_retention_time(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)  # anna, bernd, carla: confirmed by import
    assert run_cli(site_copy, "send", ISSUE, "--now")[0] == 0
    for who in ("anna", "bernd"):
        assert run_cli(site_copy, "subscribers", "unsubscribe", f"{who}@example.org")[0] == 0
    _, store = open_site(site_copy)
    try:
        # Anna left 31 days ago (subscribe.retention_days = 30), Bernd today.
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(subscribers)
                .where(subscribers.c.email == "anna@example.org")
                .values(unsubscribed_at=now_utc() - timedelta(days=31))
            )
        jobs.housekeeping(str(site_copy / "comms.toml"))
        assert store.find("anna@example.org") is None
        text = everything(store.engine)
        assert "anna" not in text.lower()
        report = store.report("anna@example.org")
        assert report is not None
        assert (report["status"], report["suppressed"]) == ("reduced", "unsubscribed")
        assert [(e["action"], e["channel"]) for e in report["consent"]] == [
            ("import", "cli"),
            ("unsubscribe", "admin"),
        ]
        assert all(e["note"] is None and e["ip"] is None for e in report["consent"])
        assert report["deliveries"] == []
        bernd = store.find("bernd@example.org")
        assert bernd is not None and bernd.name == "Bernd" and bernd.status == "unsubscribed"
        carla = store.find("carla@example.org")
        assert carla is not None and carla.status == "active"
        assert store.ledger.campaign(ISSUE) is not None  # the anonymous counts stay
        code, out, _ = run_cli(site_copy, "subscribers", "show", "anna@example.org")
        assert code == 0 and "status:       reduced" in out and "consent ledger (2):" in out
        # Reduced records are not subscribers: the export leaves them out.
        code, out, _ = run_cli(site_copy, "subscribers", "export")
        assert code == 0 and "reduced.invalid" not in out and "bernd@example.org" in out
    finally:
        store.close()


def test_a_reduced_person_keeps_working_links_may_come_back_and_be_erased(web: Web) -> None:
    person = web.activate(ADDRESS)
    unsubscribe = f"/unsubscribe/{web.subs.unsubscribe_token(person)}"
    preferences = f"/preferences/{web.subs.preferences_token(person)}"
    assert web.client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    now = now_utc()
    assert reduce_ended(web.config, web.store, now + timedelta(days=29)) == 0
    assert reduce_ended(web.config, web.store, now + timedelta(days=31)) == 1
    assert reduce_ended(web.config, web.store, now + timedelta(days=62)) == 0  # once
    assert ADDRESS not in everything(web.store.engine)
    assert "127.0.0.1" not in everything(web.store.engine)  # keep_ip: the IP goes too
    # The one-click unsubscribe of a mail already sent still answers; the settings are gone.
    again = web.client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert web.client.get(preferences).status_code == 404
    # The person may sign up again; the confirmation lifts their own unsubscribe.
    web.sign_up(ADDRESS)
    assert web.client.post(web.confirm_path()).status_code == 200
    back = web.store.find(ADDRESS)
    assert back is not None and back.status == "active"
    report = web.store.report(ADDRESS)
    assert report is not None
    assert [e["action"] for e in report["consent"]] == [
        "request",
        "confirm",
        "unsubscribe",
        "request",
        "confirm",
    ]
    # Erasure takes the reduced proof too: only the suppression hash stays.
    assert web.store.erase(ADDRESS)["subscriber"] == 2
    assert web.store.report(ADDRESS) == {
        "email": ADDRESS,
        "suppressed": "erased",
        "status": "erased",
        "consent": [],
        "deliveries": [],
    }


def test_reduce_from_the_command_line(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)
    assert run_cli(site_copy, "subscribers", "unsubscribe", "anna@example.org")[0] == 0
    code, out, _ = run_cli(site_copy, "subscribers", "reduce")
    assert (code, out) == (
        0,
        "reduced 0 subscription(s) ended more than 30 day(s) ago to the proof of consent\n",
    )
    code, out, _ = run_cli(site_copy, "subscribers", "reduce", "--days", "0")
    assert (code, out) == (
        0,
        "reduced 1 subscription(s) ended more than 0 day(s) ago to the proof of consent\n",
    )
    shown = run_cli(site_copy, "subscribers", "show", "anna@example.org", "--json")[1]
    assert '"status": "reduced"' in shown and "Anna" not in shown
