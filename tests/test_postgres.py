"""What only PostgreSQL has: row locks that a second claimer skips.

Everything else the store and the ledger do is tested on both databases by the suite itself
(tests/databases.py): each test marked `database` runs `[sqlite]` and `[postgresql]`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.db.tables import deliveries
from comms.sending.campaign import prepare

from .ledgerkit import make_store


@pytest.mark.postgresql_only("SQLite has no row locks: BEGIN IMMEDIATE serialises its writers")
def test_claims_skip_rows_another_worker_holds(tmp_path: Path) -> None:
    """FOR UPDATE SKIP LOCKED: a second claimer never waits for, or takes, locked rows."""
    store = make_store(tmp_path, 30)
    assert store.engine.dialect.name == "postgresql"
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
