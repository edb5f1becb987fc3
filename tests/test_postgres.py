"""The store and the send ledger on a real PostgreSQL server (a throwaway cluster on 127.0.0.1)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.core.errors import PermanentFailure
from comms.db.status import CampaignStatus, DeliveryStatus, SubscriberStatus
from comms.db.subscribers import Consent, Store
from comms.db.tables import deliveries
from comms.sending.campaign import SendOptions, prepare, send

from .ledgerkit import Sink, build, make_store, status_checks
from .test_subscribers import schema_drift

# One throwaway cluster per session: keep its tests on one xdist worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgresql")]


def pg_store(tmp_path: Path, url: str, count: int) -> Store:
    store = make_store(tmp_path, count, database_url=url)
    assert store.engine.dialect.name == "postgresql"
    return store


def test_send_resume_and_bounce_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    store = pg_store(tmp_path, pg_url, 120)
    gone = PermanentFailure("550 5.1.1 no such user", code=550, enhanced="5.1.1")
    sink = Sink(failures={"user7@example.org": [gone]})
    campaign, created = prepare(store, "ausgabe-1", "h", [], [])
    assert created and campaign.recipients == 120
    report = send(store, campaign, build, sink.opener, SendOptions(retry_backoff=0.0))
    assert report.exit_code == 0
    assert report.counts == {"sent": 119, "failed": 1}
    assert set(sink.per_address().values()) == {1}
    person = store.report("user7@example.org")
    assert person is not None and person["status"] == "bounced"
    assert person["suppressed"] == "bounced"
    again = send(store, campaign, build, sink.opener, SendOptions())
    assert again.done_now == {} and len(sink.delivered) == 119


def test_status_enums_are_the_check_constraints_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    store = pg_store(tmp_path, pg_url, 0)
    assert status_checks(store) == {
        "subscribers": set(SubscriberStatus),
        "campaigns": set(CampaignStatus),
        "deliveries": set(DeliveryStatus),
    }


def test_claims_skip_rows_another_worker_holds(tmp_path: Path, pg_url: str) -> None:
    """FOR UPDATE SKIP LOCKED: a second claimer never waits for, or takes, locked rows."""
    store = pg_store(tmp_path, pg_url, 30)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    now = now_utc()
    with store.engine.connect() as other:
        transaction = other.begin()
        locked = (
            other.execute(
                sa.select(deliveries.c.id).order_by(deliveries.c.id).limit(10).with_for_update()
            )
            .scalars()
            .all()
        )
        claimed = store.ledger.claim(campaign.id, "me", 15, now, now + timedelta(minutes=5))
        transaction.rollback()
    ids = [c.delivery_id for c in claimed]
    assert len(ids) == 15
    assert not set(ids) & set(locked)


def test_erasure_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    store = pg_store(tmp_path, pg_url, 3)
    prepare(store, "ausgabe-1", "h", [], [])
    assert store.erase("user1@example.org") == {"subscriber": 1, "consent": 1, "deliveries": 1}
    assert store.report("user1@example.org") == {
        "email": "user1@example.org",
        "suppressed": "erased",
        "status": "erased",
        "consent": [],
        "deliveries": [],
    }
    person = store.find("user2@example.org")
    assert person is not None
    store.unsubscribe(person.uid, Consent("unsubscribe", "test"))
    assert store.suppression_reason("user2@example.org") == "unsubscribed"


def test_migrations_match_the_declared_schema_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    assert schema_drift(pg_store(tmp_path, pg_url, 0)) == []
