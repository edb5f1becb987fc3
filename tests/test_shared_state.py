"""State several processes share through the database: sign-up limits and the send budget."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

import pytest

from comms.audience.limits import MAILS_PER_ADDRESS, SharedLimit, signup_limits
from comms.core.keys import Purpose
from comms.db.store import Store, open_store
from comms.sending.budget import SharedBudget
from comms.sending.campaign import prepare
from comms.sending.throttle import TokenBucket

from .databases import Databases, every_row
from .ledgerkit import make_config, make_store


def two_stores(root: Path, **overrides: object) -> tuple[Store, Store]:
    """Two stores on one database, as two server processes have."""
    first = make_store(root, 0, **overrides)
    return first, open_store(make_config(root, **overrides))


@pytest.mark.database
def test_a_limit_counts_the_hits_of_every_process_and_forgets_after_its_window(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    a, b = (
        SharedLimit(s, Purpose.SIGNUP_RATE, 3, 60, lambda: now[0]) for s in two_stores(tmp_path)
    )
    assert [a.hit("192.0.2.1"), b.hit("192.0.2.1"), a.hit("192.0.2.1")] == [0, 0, 0]
    assert b.hit("192.0.2.1") == 60 and a.hit("192.0.2.1") == 60
    assert b.hit("192.0.2.2") == 0  # another IP has its own count
    now[0] += 60
    assert b.hit("192.0.2.1") == 0


@pytest.mark.database
def test_what_a_limit_stores_is_no_address(tmp_path: Path, database: Databases) -> None:
    store = make_store(tmp_path)
    _, per_address = signup_limits(store, 10, 600)
    for _ in range(MAILS_PER_ADDRESS):
        assert per_address.hit("leser@example.org") == 0
    assert per_address.hit("leser@example.org") > 0
    assert "example.org" not in every_row(store.engine)
    if not database.postgresql:  # the file's free pages and WAL too
        raw = b"".join(f.read_bytes() for f in (tmp_path / "var").glob("comms.db*"))
        assert raw and b"example.org" not in raw


def hammer(limits: list[SharedLimit], value: str, tries: int) -> int:
    """Hit `value` from one thread per limit at once; how many hits were allowed."""
    allowed: list[float] = []
    start = threading.Barrier(len(limits))

    def hit(limit: SharedLimit) -> None:
        start.wait()
        allowed.extend(w for w in (limit.hit(value) for _ in range(tries)) if w == 0)

    threads = [threading.Thread(target=hit, args=(limit,)) for limit in limits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(allowed)


@pytest.mark.database
def test_concurrent_hits_from_two_processes_allow_the_limit_once(tmp_path: Path) -> None:
    limits = [SharedLimit(s, Purpose.SIGNUP_RATE, 5, 600) for s in two_stores(tmp_path)]
    assert hammer(limits, "192.0.2.9", 6) == 5


def budget_pace(stores: tuple[Store, Store], rate: float, each: int) -> float:
    """Two workers of one campaign acquire `each` sends at once; seconds it took."""
    campaign, _ = prepare(stores[0], "ausgabe-1", "h", [], [])
    budgets = [
        SharedBudget(partial(s.ledger.reserve, campaign.id), TokenBucket(0), rate) for s in stores
    ]
    began = time.monotonic()
    threads = [
        threading.Thread(target=lambda b=b: [b.acquire() for _ in range(each)]) for b in budgets
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - began


@pytest.mark.database
def test_two_workers_share_one_send_rate(tmp_path: Path) -> None:
    """200 messages at 400/s take half a second however many workers send them."""
    took = budget_pace(two_stores(tmp_path), 400, 100)
    assert took >= 0.45, f"two workers sent 200 messages in {took:.2f} s at 400/s"


def test_a_stop_wakes_a_worker_waiting_for_its_shared_slot() -> None:
    # The slot is far ahead (the campaign's budget is spent); a stop must not wait for it.
    stop = threading.Event()
    waits: list[float] = []

    def sleep(seconds: float) -> bool:
        """The run's stop.wait; the stop comes while the worker waits."""
        waits.append(seconds)
        stop.set()
        return stop.wait(seconds)

    budget = SharedBudget(lambda count, rate, now: now + 60.0, TokenBucket(0), 1.0, sleep=sleep)
    budget.acquire()
    assert len(waits) == 1 and waits[0] > 59  # one wait for the slot, cut short by the stop
