"""The scheduler with a controlled clock: sends at their time, restarts, staleness, the lease."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine

from comms.scheduler import SchedulerHandle, start_scheduler

from .schedkit import ISSUE, SECRET, berlin, open_site, outbox, wait_for, with_subscribers


@pytest.fixture
def site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample site with three subscribers; the scheduler reads the same secret."""
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)
    return site_copy


@pytest.fixture
def handles() -> Iterator[list[SchedulerHandle]]:
    """Schedulers a test started; shut down at the end even when the test fails."""
    started: list[SchedulerHandle] = []
    yield started
    for handle in started:
        handle.shutdown()


def start(root: Path, handles: list[SchedulerHandle]) -> SchedulerHandle:
    config, store = open_site(root)
    handle = start_scheduler(config, store)
    assert handle is not None
    handles.append(handle)
    return handle


def stop(handle: SchedulerHandle, handles: list[SchedulerHandle]) -> None:
    handle.shutdown()
    handle.store.close()
    handles.remove(handle)


def next_runs(handle: SchedulerHandle) -> dict[str, str]:
    return {job.id: job.next_run_time.isoformat() for job in handle.jobs()}


def test_a_send_fires_at_its_time(site: Path, handles: list[SchedulerHandle]) -> None:
    with time_machine.travel(berlin(2020, 2, 4, 8, 59, 50), tick=True) as clock:
        handle = start(site, handles)
        assert next_runs(handle)[f"send:{ISSUE}"] == "2020-02-04T09:00:00+01:00"
        handle.wakeup()
        assert outbox(site) == []
        clock.move_to(berlin(2020, 2, 4, 9, 0, 1))
        handle.wakeup()
        wait_for(lambda: ("ran", f"send:{ISSUE}") in handle.events)
        assert len(outbox(site)) == 3
        assert f"send:{ISSUE}" not in next_runs(handle)
        stop(handle, handles)
