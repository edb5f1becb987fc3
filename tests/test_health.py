"""Health that tells the truth: `/healthz` and `comms status --health` report the scheduler's
holder, live senders per campaign and stalled campaigns, not only the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.db.people import NewSubscriber
from comms.db.store import Store
from comms.db.tables import deliveries, scheduler_lease
from comms.sending.campaign import prepare

from .ledgerkit import IMPORT, make_store, run_cli
from .webkit import Web, open_web

pytestmark = pytest.mark.database

#: A worker on another host: alive as far as this host can tell, until its lease ends.
ELSEWHERE = "worker-b:4242:0123abcd"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path) as kit:
        people = ((n, NewSubscriber(f"leser{n}@example.org")) for n in range(3))
        kit.store.import_subscribers(people, IMPORT, confirmed=True)
        yield kit


def _campaign(store: Store) -> int:
    campaign, _ = prepare(store, "ausgabe-1", "hash-1", [], [])
    return campaign.id


def _health(web: Web) -> tuple[int, dict[str, Any]]:
    response = web.client.get("/healthz")
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


def test_healthz_reports_nothing_running_as_ok(web: Web) -> None:
    assert _health(web) == (
        200,
        {
            "status": "ok",
            "database": "ok",
            "scheduler": None,
            "senders": {},
            "stalled": [],
            "problems": [],
        },
    )


def test_healthz_names_the_scheduler_and_the_live_senders(web: Web) -> None:
    cid = _campaign(web.store)
    now = now_utc()
    with web.store.engine.begin() as conn:
        conn.execute(
            sa.insert(scheduler_lease).values(
                name="scheduler",
                owner="web-a:99:feedbeef",
                acquired_at=now - timedelta(minutes=5),
                heartbeat_at=now - timedelta(seconds=12),
                expires_at=now + timedelta(seconds=48),
            )
        )
    assert len(web.store.ledger.claim(cid, ELSEWHERE, 2, now, now + timedelta(minutes=5))) == 2
    code, body = _health(web)
    assert code == 200, body
    assert body["scheduler"]["owner"] == "web-a:99:feedbeef" and body["scheduler"]["alive"]
    assert 12 <= body["scheduler"]["heartbeat_age_seconds"] < 60
    assert body["senders"] == {"ausgabe-1": [{"owner": ELSEWHERE, "claimed": 2}]}
    assert body["stalled"] == [] and body["problems"] == []


def test_a_campaign_nobody_sends_any_more_is_stalled_and_503(web: Web) -> None:
    """After an outage that killed every sender: rows due, no progress for long."""
    cid = _campaign(web.store)
    long_ago = now_utc() - timedelta(minutes=40)
    with web.store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.campaign_id == cid)
            .values(queued_at=long_ago, updated_at=long_ago)
        )
    code, body = _health(web)
    assert code == 503 and body["status"] == "error"
    assert [(s["issue"], s["claimed"], s["due"]) for s in body["stalled"]] == [("ausgabe-1", 0, 3)]
    assert body["problems"] == [
        "campaign ausgabe-1 stalled: 0 claimed and 3 due, no delivery changed for 40 min"
    ]


def test_a_scheduler_lease_nobody_took_over_is_503(web: Web) -> None:
    now = now_utc()
    with web.store.engine.begin() as conn:
        conn.execute(
            sa.insert(scheduler_lease).values(
                name="scheduler",
                owner="web-a:99:feedbeef",
                acquired_at=now - timedelta(hours=1),
                heartbeat_at=now - timedelta(minutes=10),
                expires_at=now - timedelta(minutes=9),
            )
        )
    code, body = _health(web)
    assert code == 503
    [problem] = body["problems"]
    assert problem.startswith("the scheduler's lease ran out (web-a:99:feedbeef, last heartbeat 6")
    assert problem.endswith(" s ago) and nobody took it over")


def test_comms_status_health_says_the_same_and_exits_1_when_wrong(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    cid = _campaign(store)
    code, out, err = run_cli(tmp_path, "status", "--health")
    assert (code, out, err) == (0, "database: ok\nscheduler: not running\nsenders: none\n", "")
    now = now_utc()
    store.ledger.claim(cid, ELSEWHERE, 1, now, now + timedelta(minutes=5))
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries).values(
                queued_at=now - timedelta(hours=1), updated_at=now - timedelta(hours=1)
            )
        )
    store.close()
    code, out, err = run_cli(tmp_path, "status", "--health")
    assert code == 1
    assert out == (
        f"database: ok\nscheduler: not running\nsenders of ausgabe-1: {ELSEWHERE} (1 claimed)\n"
    )
    assert err == (
        "problem: campaign ausgabe-1 stalled: 1 claimed and 1 due, no delivery changed for 60 min\n"
    )
    code, out, _ = run_cli(tmp_path, "status", "--health", "--json")
    assert code == 1 and json.loads(out)["stalled"][0]["issue"] == "ausgabe-1"
