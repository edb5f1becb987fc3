"""The lease heartbeat stops with the scheduler: a dead scheduler thread does not keep the lease."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from comms.schedule.lease import Lease, holder
from comms.schedule.runner import start_scheduler

from .schedkit import SECRET, open_site, wait_for

pytestmark = pytest.mark.database

OTHER = "elsewhere:4242:abcd"


@pytest.mark.slow
def test_a_dead_scheduler_thread_lets_the_lease_expire(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    monkeypatch.setenv("COMMS_SCHEDULE_LEASE_SECONDS", "10")  # a heartbeat every 2.5 s
    died: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", died.append)  # the crash is the point here
    config, store = open_site(site_copy)
    handle = start_scheduler(config, store)
    assert handle is not None

    def crash() -> float:
        raise RuntimeError("the scheduler's main loop broke")

    try:
        monkeypatch.setattr(handle.scheduler, "_process_jobs", crash)
        handle.wakeup()
        wait_for(lambda: bool(died))
        assert died[0].thread is not None and died[0].thread.name == "APScheduler"
        assert died[0].exc_type is RuntimeError
        wait_for(lambda: not handle._beat.is_alive(), timeout=5)  # within one beat
        assert "the scheduler thread has died; the lease is no longer renewed" in caplog.text
        last = holder(store.engine)
        assert last is not None and last.owner == handle.lease.owner
        time.sleep(2.6)  # a beat later, still the same row
        assert holder(store.engine) == last
        # This process is alive, so another one waits for the lease to expire, then takes it.
        assert not Lease(store.engine, 10, owner=OTHER).acquire()
        after = last.expires_at + timedelta(seconds=1)
        assert Lease(store.engine, 10, owner=OTHER, clock=lambda: after).acquire()
    finally:
        handle.shutdown()
        store.close()
    taken = holder(store.engine)
    assert taken is not None and taken.owner == OTHER  # shutdown leaves the new lease alone
