"""The send ledger beside the subscriber store: status sets, the run's narrow interface, bounces."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from comms.core.clock import now_utc
from comms.core.errors import PermanentFailure
from comms.core.settings import Delivery
from comms.db.ledger import Ledger
from comms.db.outcomes import Claimed, LedgerWriter, Outcome
from comms.db.status import CampaignStatus, DeliveryStatus, SubscriberStatus
from comms.db.store import Store
from comms.db.tables import consent, deliveries, suppression
from comms.sending.campaign import prepare
from comms.sending.ports import SuppressionCheck
from comms.sending.run import Run, SendOptions

from .ledgerkit import Sink, build, make_store, status_checks

pytestmark = pytest.mark.database

GONE = PermanentFailure("550 5.1.1 no such user", code=550, enhanced="5.1.1")


def test_status_enums_are_the_check_constraints_of_the_migrated_database(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    assert status_checks(store) == {
        "subscribers": set(SubscriberStatus),
        "campaigns": set(CampaignStatus),
        "deliveries": set(DeliveryStatus),
    }


class OnlyTheSendLedger:
    """Implements the run's `SendLedger` protocol over a ledger and nothing else."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.claims = 0

    def claim(
        self, cid: int, owner: str, limit: int, now: datetime, until: datetime
    ) -> list[Claimed]:
        self.claims += 1
        return self.ledger.claim(cid, owner, limit, now, until)

    def writer(self, source: str, owner: str) -> LedgerWriter:
        return self.ledger.writer(source, owner)

    def suppression_probe(self) -> SuppressionCheck:
        return self.ledger.suppression_probe()

    def parallel_writes(self) -> bool:
        return self.ledger.parallel_writes()

    def renew(self, cid: int, owner: str, until: datetime) -> int:
        return self.ledger.renew(cid, owner, until)

    def release_orphans(
        self, cid: int, abandoned: Callable[[str], bool], now: datetime, keep: str | None = None
    ) -> int:
        return self.ledger.release_orphans(cid, abandoned, now, keep)

    def unfinished_elsewhere(self, cid: int, owner: str, soon: datetime) -> int:
        return self.ledger.unfinished_elsewhere(cid, owner, soon)

    def reserve(self, cid: int, count: int, rate: float, now: float) -> float:
        return self.ledger.reserve(cid, count, rate, now)


def _bounce_rows(store: Store) -> list[dict[str, object]]:
    with store.reading() as conn:
        rows = conn.execute(sa.select(consent).where(consent.c.action == "bounce"))
        return [dict(row._mapping) for row in rows]


def test_a_run_over_the_send_ledger_protocol_ends_a_bounced_subscription(tmp_path: Path) -> None:
    """The run sees only claims, a writer and a probe; the store still records the bounce."""
    store = make_store(tmp_path, 5)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    ledger = OnlyTheSendLedger(store.ledger)
    sink = Sink(failures={"user3@example.org": [GONE]})
    options = SendOptions.of(Delivery(retry_backoff_seconds=0))
    run = Run(ledger, campaign, build, sink.opener, options, None)
    assert run.execute() == {"sent": 4, "failed": 1}
    assert ledger.claims >= 1
    person = store.find("user3@example.org")
    assert person is not None and person.status == SubscriberStatus.BOUNCED
    assert person.unsubscribed_at is not None
    [row] = _bounce_rows(store)
    assert row["subscriber_id"] == person.id
    assert (row["source"], row["channel"], row["note"]) == ("send ausgabe-1", "smtp", str(GONE))
    assert store.suppression_reason("user3@example.org") == "bounced"
    others = [store.find(f"user{n}@example.org") for n in (0, 1, 2, 4)]
    assert {p.status for p in others if p} == {SubscriberStatus.ACTIVE}


class BrokenStore:
    """Ends the subscription through the store, then fails (as a crash mid-commit would)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def bounced(
        self, conn: Connection, sid: int, key: str, error: str | None, source: str, at: datetime
    ) -> None:
        self.store.bounced(conn, sid, key, error, source, at)
        raise RuntimeError("disk full")


@pytest.mark.database
def test_a_claim_carries_each_subscriber_and_an_erased_one_as_nobody(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    with store.engine.begin() as conn:  # erased after the snapshot: the row stays, unowned
        conn.execute(sa.text("DELETE FROM subscribers WHERE email = 'user1@example.org'"))
    now = now_utc()
    claimed = store.ledger.claim(campaign.id, "me", 10, now, now + timedelta(minutes=5))
    assert [c.delivery_id for c in claimed] == sorted(c.delivery_id for c in claimed)
    first, erased, third = claimed
    assert (first.email, third.email) == ("user0@example.org", "user2@example.org")
    assert first.subscriber_status == SubscriberStatus.ACTIVE and first.uid and first.key
    assert (first.attempts, first.link_version) == (0, 0)
    assert first.queued_at.utcoffset() == timedelta(0)
    assert erased.subscriber_id is None
    assert (erased.email, erased.uid, erased.key, erased.subscriber_status) == (None,) * 4
    assert (erased.link_version, erased.regions, erased.topics) == (0, "", "")


def test_a_bounce_and_its_delivery_outcome_commit_together_or_not_at_all(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    now = now_utc()
    claimed = store.ledger.claim(campaign.id, "me", 2, now, now)
    bounced, delivered = claimed
    writer = Ledger(store.engine, bounces=BrokenStore(store)).writer("send ausgabe-1", "me")
    outcomes = [
        Outcome(bounced.delivery_id, DeliveryStatus.FAILED, "<m@x>", str(GONE), bounce=bounced),
        Outcome(delivered.delivery_id, DeliveryStatus.SENT, "<n@x>"),
    ]
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            writer.write(outcomes, now)
    finally:
        writer.close()
    with store.reading() as conn:
        states = set(conn.execute(sa.select(deliveries.c.status)).scalars())
        suppressed = conn.execute(sa.select(sa.func.count()).select_from(suppression)).scalar()
    assert states == {DeliveryStatus.SENDING}
    assert suppressed == 0
    assert _bounce_rows(store) == []
    person = store.by_uid(bounced.uid or "")
    assert person is not None and person.status == SubscriberStatus.ACTIVE
    # The same outcomes through the store's own ledger: all of it at once.
    writer = store.ledger.writer("send ausgabe-1", "me")
    try:
        writer.write(outcomes, now)
    finally:
        writer.close()
    assert len(_bounce_rows(store)) == 1
    assert store.suppression_reason(person.email) == "bounced"


@pytest.mark.sqlite_only("PostgreSQL stores timestamps as such, SQLite as text")
def test_the_writer_stores_times_as_the_rest_of_the_ledger_does(tmp_path: Path) -> None:
    """On SQLite a timestamp is text that sorts as the time does only if every writer writes
    it alike: the outcome writer too, fraction included (sqlite3's deprecated datetime adapter,
    which it used, drops a zero fraction)."""
    store = make_store(tmp_path, 1)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    at = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    [claimed] = store.ledger.claim(campaign.id, "me", 1, at, at + timedelta(minutes=5))
    writer = store.ledger.writer("send ausgabe-1", "me")
    later = Outcome(
        claimed.delivery_id, DeliveryStatus.QUEUED, error="451", next_attempt_at=at + timedelta(1)
    )
    writer.write([later], at)
    writer.close()
    with store.reading() as conn:
        stored = conn.exec_driver_sql("SELECT updated_at, next_attempt_at FROM deliveries").one()
    assert tuple(stored) == ("2031-05-01 12:00:00.000000", "2031-05-02 12:00:00.000000")


def test_a_late_outcome_never_undoes_another_run_s_claim_or_a_final_row(tmp_path: Path) -> None:
    """A run cut off from the database for longer than its lease: its rows were handed back
    and taken over by another run. What it writes late lands only where it cannot undo the
    other run's work: not on a row the other run holds, not on a row already final."""
    store = make_store(tmp_path, 3)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    start = now_utc()
    mine = store.ledger.claim(campaign.id, "late", 3, start, start + timedelta(seconds=10))
    later = start + timedelta(minutes=1)
    assert store.ledger.release_orphans(campaign.id, lambda _: False, later) == 3
    # The other run takes two rows; it sends and records one of them.
    theirs = store.ledger.claim(campaign.id, "other", 2, later, later + timedelta(minutes=5))
    other = store.ledger.writer("send ausgabe-1", "other")
    other.write([Outcome(theirs[0].delivery_id, DeliveryStatus.SENT, "<theirs@x>")], later)
    other.close()
    # Now the late run writes: a hand-back, a sent and a sent.
    late = store.ledger.writer("send ausgabe-1", "late")
    late.write(
        [
            Outcome(mine[0].delivery_id, DeliveryStatus.QUEUED, attempted=False),
            Outcome(mine[1].delivery_id, DeliveryStatus.SENT, "<late1@x>"),
            Outcome(mine[2].delivery_id, DeliveryStatus.SENT, "<late2@x>"),
        ],
        later,
    )
    late.close()
    with store.reading() as conn:
        rows = {
            row.id: (row.status, row.claimed_by, row.message_id)
            for row in conn.execute(sa.select(deliveries)).all()
        }
    assert rows == {
        mine[0].delivery_id: ("sent", None, "<theirs@x>"),  # final: the hand-back is ignored
        mine[1].delivery_id: ("sending", "other", None),  # the other run's claim stands
        mine[2].delivery_id: ("sent", None, "<late2@x>"),  # handed back, untaken: recorded
    }


def _mark(store: Store, ids: list[int], **values: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(deliveries).where(deliveries.c.id.in_(ids)).values(**values))


def test_a_claim_takes_due_retries_first_then_new_rows_each_in_id_order(tmp_path: Path) -> None:
    """Per claimable status the first due rows in id order, retries that are due first; a retry
    not yet due stays; a row in any other status is never taken."""
    store = make_store(tmp_path, 8)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    now = now_utc()
    with store.reading() as conn:
        ids = list(conn.execute(sa.select(deliveries.c.id).order_by(deliveries.c.id)).scalars())
    _mark(store, ids[5:7], status=DeliveryStatus.AMBIGUOUS, next_attempt_at=now)
    _mark(store, ids[7:], status=DeliveryStatus.AMBIGUOUS, next_attempt_at=now + timedelta(hours=1))
    _mark(store, ids[1:2], status=DeliveryStatus.SENT)
    claimed = store.ledger.claim(campaign.id, "me", 4, now, now + timedelta(minutes=5))
    assert [c.delivery_id for c in claimed] == [ids[0], ids[2], ids[5], ids[6]]
    rest = store.ledger.claim(campaign.id, "me", 10, now, now + timedelta(minutes=5))
    assert [c.delivery_id for c in rest] == [ids[3], ids[4]]


@pytest.mark.postgresql_only("row locks across connections: SQLite has one writer at a time")
def test_a_claim_passes_over_rows_another_worker_holds_without_waiting(tmp_path: Path) -> None:
    """Two workers claiming at once: the second takes the next rows instead of waiting for the
    first one's transaction (SKIP LOCKED), so neither blocks the other."""
    store = make_store(tmp_path, 6)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    now = now_utc()
    with store.engine.connect() as other:  # a claim by another worker, not yet committed
        held = other.execute(
            sa.select(deliveries.c.id)
            .order_by(deliveries.c.id)
            .limit(2)
            .with_for_update(skip_locked=True)
        ).scalars()
        held_ids = list(held)
        claimed = store.ledger.claim(campaign.id, "me", 3, now, now + timedelta(minutes=5))
        other.rollback()
    assert len(claimed) == 3
    assert not {c.delivery_id for c in claimed} & set(held_ids)


def _claim_plan(store: Store, cid: int, now: datetime) -> str:
    """The query plan of the statement that claims rows of campaign `cid`."""
    if store.engine.dialect.name == "postgresql":
        from comms.db.ledger import _CLAIM_POSTGRESQL

        params = {"cid": cid, "owner": "me", "limit": 500, "now": now, "until": now}
        raw = store.engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            # Tiny tables: without this the planner reads them whole whatever the indexes.
            driver.execute("SET enable_seqscan = off")
            driver.execute("SET enable_sort = off")
            rows = driver.execute("EXPLAIN " + _CLAIM_POSTGRESQL, params).fetchall()
            driver.rollback()
        finally:
            raw.invalidate()
        return "\n".join(row[0] for row in rows)
    seen: list[tuple[str, Any]] = []

    def keep(conn: object, cursor: object, sql: str, params: object, *rest: object) -> None:
        if sql.lstrip().startswith("UPDATE deliveries"):
            seen.append((sql, params))

    sa.event.listen(store.engine, "before_cursor_execute", keep)
    try:
        store.ledger.claim(cid, "me", 500, now, now)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", keep)
    [(sql, params)] = seen
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_a_claim_reads_its_rows_off_the_claim_index_without_sorting_them(tmp_path: Path) -> None:
    """Each claim takes the first due rows in id order: read off ix_deliveries_claim, never by
    sorting every queued row of the campaign (which grew with the list, per claim)."""
    store = make_store(tmp_path, 3)
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    plan = _claim_plan(store, campaign.id, now_utc())
    assert "ix_deliveries_claim" in plan
    assert "TEMP B-TREE" not in plan  # SQLite's sort
    assert "Sort Key: deliveries" not in plan  # PostgreSQL's (the result's own order is t.id)
    assert "Seq Scan on deliveries" not in plan
