"""What only PostgreSQL has: row locks that a second claimer skips, a server to lose.

Everything else the store and the ledger do is tested on both databases by the suite itself
(tests/databases.py): each test marked `database` runs `[sqlite]` and `[postgresql]`.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.db.engine import make_engine
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


@pytest.mark.postgresql_only("libpq's connection settings; SQLite has no server to lose")
def test_a_server_that_does_not_answer_is_given_up_on(pg_url: str) -> None:
    """A vanished server (a network split) must not hang a connection for hours: comms sets
    libpq's connect timeout and TCP keepalives unless the URL sets its own."""
    engine = make_engine(pg_url + "?keepalives_idle=5")
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        settings = raw.info.get_parameters()
    engine.dispose()
    assert settings["connect_timeout"] == "10" and settings["keepalives_count"] == "3"
    assert settings["keepalives_idle"] == "5"  # the URL's own value wins
    with socket.socket() as silent:  # accepts the TCP connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/x?connect_timeout=2")
        given: dict[str, object] = {}

        @sa.event.listens_for(engine, "do_connect")
        def record(
            dialect: object, record: object, args: object, params: dict[str, object]
        ) -> None:
            given.update(params)

        with pytest.raises(sa.exc.OperationalError, match="timeout"):
            engine.connect()
        # libpq gave up after the URL's timeout, not the default of 10 s.
        assert str(given["connect_timeout"]) == "2"
