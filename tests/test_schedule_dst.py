"""Daylight saving time: jobs fire once, at the right local time, on both change days (T2)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from comms.scheduler import DailyTrigger, SchedulerHandle, start_scheduler

from .ledgerkit import run_cli
from .schedkit import (
    BERLIN,
    ISSUE,
    SECRET,
    berlin,
    open_site,
    outbox,
    set_front_matter,
    wait_for,
    with_subscribers,
)


def fire_times(start: datetime, count: int) -> list[str]:
    trigger = DailyTrigger(hour=2, minute=30, timezone=BERLIN)
    times: list[str] = []
    previous = None
    now = start
    for _ in range(count):
        found = trigger.get_next_fire_time(previous, now)
        assert found is not None
        times.append(found.astimezone(UTC).astimezone(BERLIN).isoformat())
        previous = now = found
    return times


def test_a_daily_job_fires_once_on_each_day_around_the_changes() -> None:
    assert fire_times(berlin(2025, 3, 28, 12), 4) == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:30:00+02:00",  # 02:30 does not exist: an hour later, once
        "2025-03-31T02:30:00+02:00",
        "2025-04-01T02:30:00+02:00",
    ]
    assert fire_times(berlin(2025, 10, 24, 12), 4) == [
        "2025-10-25T02:30:00+02:00",
        "2025-10-26T02:30:00+02:00",  # the first 02:30 of the two, not the second
        "2025-10-27T02:30:00+01:00",
        "2025-10-28T02:30:00+01:00",
    ]


def test_started_inside_the_repeated_hour_it_waits_for_the_next_day() -> None:
    trigger = DailyTrigger(hour=2, minute=30, timezone=BERLIN)
    inside = datetime(2025, 10, 26, 0, 45, tzinfo=UTC)  # 02:45 CEST, before 02:30 CET
    found = trigger.get_next_fire_time(None, inside)
    assert found is not None
    assert found.astimezone(UTC).astimezone(BERLIN).isoformat() == "2025-10-27T02:30:00+01:00"


@pytest.fixture
def site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)
    return site_copy


@pytest.fixture
def handles() -> Iterator[list[SchedulerHandle]]:
    started: list[SchedulerHandle] = []
    yield started
    for handle in started:
        handle.shutdown()
        handle.store.close()


def runs(handle: SchedulerHandle, job_id: str) -> int:
    return handle.events.count(("ran", job_id))


def night(site: Path, handles: list[SchedulerHandle], send_at: str, steps: list[datetime]) -> None:
    """Start before 02:00 local, then step the clock through the night; count the runs."""
    set_front_matter(site / "content" / "issues" / f"{ISSUE}.md", "send_at", send_at)
    with time_machine.travel(steps[0], tick=True) as clock:
        config, store = open_site(site)
        handle = start_scheduler(config, store)
        assert handle is not None
        handles.append(handle)
        for step in steps[1:]:
            retries = runs(handle, "retry")
            clock.move_to(step)
            handle.wakeup()
            # the retry pass (every 5 min) ran: the scheduler has looked at `step`
            wait_for(lambda before=retries: runs(handle, "retry") > before)
            assert runs(handle, f"send:{ISSUE}") <= 1
            assert runs(handle, "housekeeping") <= 1
        wait_for(lambda: runs(handle, f"send:{ISSUE}") == runs(handle, "housekeeping") == 1)
        assert len(outbox(site)) == 3
        next_run = {job.id: job.next_run_time.isoformat() for job in handle.jobs()}
        handles.remove(handle)
        handle.shutdown()
        store.close()
    assert f"send:{ISSUE}" not in next_run


def test_fall_back_night_sends_once_and_purges_once(
    site: Path, handles: list[SchedulerHandle]
) -> None:
    with time_machine.travel(berlin(2025, 10, 18, 12), tick=False):
        code, _, err = run_cli(site, "subscribers", "add", "unbestaetigt@example.org")
        assert code == 0, err
    utc = [datetime(2025, 10, 25, 23, 50, tzinfo=UTC)]  # 01:50 CEST
    utc += [datetime(2025, 10, 26, h, m, 1, tzinfo=UTC) for h, m in ((0, 20), (0, 30), (1, 30))]
    # 02:20 CEST, 02:30 CEST (the send and the purge), 02:30 CET (nothing again)
    night(site, handles, "2025-10-26 02:30", utc)
    code, out, _ = run_cli(site, "subscribers", "show", "unbestaetigt@example.org")
    assert out == ""  # purged: nothing stored about the address any more


def test_spring_forward_night_sends_once(site: Path, handles: list[SchedulerHandle]) -> None:
    utc = [datetime(2025, 3, 30, 0, 50, tzinfo=UTC)]  # 01:50 CET
    utc += [datetime(2025, 3, 30, h, m, 1, tzinfo=UTC) for h, m in ((0, 59), (1, 30), (2, 30))]
    # 01:59 CET, 03:30 CEST (= the missing 02:30: send and purge), 04:30 CEST (nothing again)
    night(site, handles, "2025-03-30 02:30", utc)
