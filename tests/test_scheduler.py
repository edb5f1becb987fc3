"""The scheduler with a controlled clock: send times, restarts, staleness, the lease, DST.

Covers docs/requirements.md R4, R5, R6 and T2.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from comms.db.tables import scheduler_lease
from comms.schedule.lease import Lease, holder
from comms.schedule.runner import DailyTrigger, SchedulerHandle, start_scheduler

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

# The scheduler's timing on the sample site, whose comms.toml requires approval (test_desk.py's).
pytestmark = pytest.mark.usefixtures("without_approval")


@pytest.fixture
def site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample site with three subscribers; the scheduler reads the same secret."""
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)
    # The sends' timing alone: the sample digest's runs are tests/test_digests.py's.
    (site_copy / "content" / "digests" / "termine-in-der-region.md").unlink()
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


@pytest.mark.database
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


def sent(root: Path) -> int:
    code, out, err = run_cli(root, "status", ISSUE, "--json")
    assert code == 0, err
    counts: dict[str, int] = json.loads(out)["counts"]
    return counts["sent"]


@pytest.mark.database
def test_a_restart_within_the_grace_time_runs_the_missed_send_once(
    site: Path, handles: list[SchedulerHandle]
) -> None:
    with time_machine.travel(berlin(2020, 2, 4, 8, 0), tick=True) as clock:
        handle = start(site, handles)
        assert len(handle.jobs()) == 4
        stop(handle, handles)
        clock.move_to(berlin(2020, 2, 4, 9, 30))  # down across the send time, 30 min
        handle = start(site, handles)
        wait_for(lambda: ("ran", f"send:{ISSUE}") in handle.events)
        assert len(outbox(site)) == 3
        stop(handle, handles)
        for _ in range(3):  # restarts neither copy jobs nor send again
            handle = start(site, handles)
            assert sorted(next_runs(handle)) == ["housekeeping", "refresh", "retry"]
            stop(handle, handles)
    assert sent(site) == 3
    assert len(outbox(site)) == 3


HELD = (
    f"held: {ISSUE} was due at Di., 4. Februar 2020, 09:00 Uhr; "
    f"release with `comms send {ISSUE} --now`"
)


@pytest.mark.database
def test_a_restart_past_the_staleness_limit_holds_the_send(
    site: Path, handles: list[SchedulerHandle]
) -> None:
    with time_machine.travel(berlin(2020, 2, 4, 8, 0), tick=True) as clock:
        handle = start(site, handles)
        stop(handle, handles)
        clock.move_to(berlin(2020, 2, 4, 15, 1))  # 6 h 1 min late
        handle = start(site, handles)
        assert sorted(next_runs(handle)) == ["housekeeping", "refresh", "retry"]
        stop(handle, handles)
        code, out, _ = run_cli(site, "status")
        assert (code, out) == (0, f"{HELD}\n")
        code, out, _ = run_cli(site, "status", ISSUE, "--json")
        assert json.loads(out)["status"] == "held"
        code, out, _ = run_cli(site, "schedule")
        assert out.splitlines()[-1] == HELD
    assert outbox(site) == []
    code, out, err = run_cli(site, "send", ISSUE, "--now")  # the editor releases it
    assert code == 0, err
    assert len(outbox(site)) == 3
    code, out, _ = run_cli(site, "status")
    assert HELD not in out


@pytest.mark.database
def test_a_send_that_fires_past_the_staleness_limit_is_missed_and_held(
    site: Path, handles: list[SchedulerHandle], caplog: pytest.LogCaptureFixture
) -> None:
    with time_machine.travel(berlin(2020, 2, 4, 8, 59, 50), tick=True) as clock:
        handle = start(site, handles)
        clock.move_to(berlin(2020, 2, 4, 15, 30))  # the machine slept through the send time
        handle.wakeup()
        wait_for(lambda: ("missed", f"send:{ISSUE}") in handle.events)
        stop(handle, handles)
        code, out, _ = run_cli(site, "status")
    assert out == f"{HELD}\n"
    assert outbox(site) == []
    assert f"job send:{ISSUE} missed its run at 2020-02-04 09:00:00+01:00" in caplog.text


@pytest.mark.database
def test_one_scheduler_per_database(site: Path, handles: list[SchedulerHandle]) -> None:
    first = start(site, handles)
    config, store = open_site(site)
    try:
        assert start_scheduler(config, store) is None
        code, out, _ = run_cli(site, "schedule")
        assert out.startswith(f"Scheduler: running in {first.lease.owner} (last heartbeat ")
        stop(first, handles)
        second = start_scheduler(config, store)
        assert second is not None
        handles.append(second)
    finally:
        for handle in list(handles):
            stop(handle, handles)
        store.close()


@pytest.mark.database
def test_a_lease_of_another_machine_blocks_until_it_expires(site: Path) -> None:
    config, store = open_site(site)
    try:
        with time_machine.travel(berlin(2020, 2, 4, 8, 0), tick=False) as clock:
            other = Lease(store.engine, 60, owner="elsewhere:4242:abcd")
            assert other.acquire()
            mine = Lease(store.engine, 60)
            assert not mine.acquire()
            clock.shift(59)
            assert other.renew()  # the heartbeat keeps it
            clock.shift(59)
            assert not mine.acquire()
            clock.shift(2)  # 61 s after the last heartbeat: the owner is gone
            assert mine.acquire()
            assert not other.renew()
    finally:
        store.close()


@pytest.mark.database
def test_a_lease_of_a_dead_process_on_this_machine_is_taken_at_once(site: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    config, store = open_site(site)
    try:
        ghost = Lease(store.engine, 3600, owner=f"{socket.gethostname()}:{dead.stdout.strip()}:x")
        assert ghost.acquire()
        assert Lease(store.engine, 3600).acquire()
    finally:
        store.close()


@pytest.mark.database
def test_editing_content_moves_and_cancels_the_job(
    site: Path, handles: list[SchedulerHandle]
) -> None:
    path = site / "content" / "issues" / f"{ISSUE}.md"
    with time_machine.travel(berlin(2020, 2, 4, 8, 0), tick=True) as clock:
        handle = start(site, handles)
        set_front_matter(path, "send_at", "2020-02-04 10:15")
        clock.move_to(berlin(2020, 2, 4, 8, 15, 1))  # the refresh job re-syncs
        handle.wakeup()
        wait_for(lambda: ("ran", "refresh") in handle.events)
        wait_for(lambda: next_runs(handle).get(f"send:{ISSUE}") == "2020-02-04T10:15:00+01:00")
        assert (site / "public" / "feed.xml").is_file()
        set_front_matter(path, "status", "draft")
        handle.sync()
        assert f"send:{ISSUE}" not in next_runs(handle)
        set_front_matter(path, "status", "ready")
        handle.sync()
        assert f"send:{ISSUE}" in next_runs(handle)
        path.write_text("---\nnumber: [\n", encoding="utf-8")  # a typo keeps the job
        handle.sync()
        assert f"send:{ISSUE}" in next_runs(handle)
        path.unlink()
        handle.sync()
        assert f"send:{ISSUE}" not in next_runs(handle)
        stop(handle, handles)
    assert outbox(site) == []


@pytest.mark.database
def test_shutdown_finishes_the_messages_in_flight_and_releases_claims(
    site: Path, handles: list[SchedulerHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_DELIVERY_RATE", "4")  # 3 messages take 0.5 s
    monkeypatch.setenv("COMMS_DELIVERY_CONCURRENCY", "1")
    with time_machine.travel(berlin(2020, 2, 4, 9, 0, 1), tick=True):
        handle = start(site, handles)
        wait_for(lambda: len(outbox(site)) >= 1)
        stop(handle, handles)
        code, out, _ = run_cli(site, "status", ISSUE, "--json")
    counts = json.loads(out)["counts"]
    assert counts["sending"] == 0
    assert counts["sent"] == len(outbox(site)) < 3
    assert counts["queued"] == 3 - counts["sent"]
    assert json.loads(out)["problem"] is None  # a shutdown is no failed send


@pytest.mark.database
def test_failed_jobs_are_logged_and_a_refused_send_is_recorded_without_a_traceback(
    site: Path, handles: list[SchedulerHandle], caplog: pytest.LogCaptureFixture
) -> None:
    path = site / "content" / "issues" / f"{ISSUE}.md"
    with time_machine.travel(berlin(2020, 2, 4, 8, 59), tick=True) as clock:
        handle = start(site, handles)
        path.write_text("---\nnumber: [\n", encoding="utf-8")
        clock.move_to(berlin(2020, 2, 4, 9, 0, 1))
        handle.wakeup()
        wait_for(lambda: ("ran", f"send:{ISSUE}") in handle.events)
        clock.move_to(berlin(2020, 2, 4, 9, 14, 1))
        handle.wakeup()
        wait_for(lambda: ("error", "refresh") in handle.events)
        stop(handle, handles)
        code, out, _ = run_cli(site, "status", "--json")
    refusal = f"scheduled send of {ISSUE} refused, nothing sent: issue '{ISSUE}' has errors"
    assert refusal in caplog.text
    # One line, no traceback: only the refresh job's failure carries one.
    traced = [r.getMessage() for r in caplog.records if r.exc_info]
    assert [line for line in traced if "refresh" not in line] == []
    assert "job refresh failed: 1 content error(s)" in caplog.text
    assert outbox(site) == []
    [row] = json.loads(out)
    assert (row["issue"], row["status"]) == (ISSUE, "refused")
    assert row["problem"]["reason"] == f"issue '{ISSUE}' has errors"
    assert row["problem"]["due_at"] == "2020-02-04T08:00:00+00:00"


def test_apscheduler_is_the_3_series() -> None:
    # 4.x is a pre-release (docs/requirements.md R6).
    assert version("apscheduler").split(".")[0] == "3"


# -- DST (docs/requirements.md T2): once, at the right local time, on both change days ---


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


def runs(handle: SchedulerHandle, job_id: str) -> int:
    return handle.events.count(("ran", job_id))


def night(site: Path, handles: list[SchedulerHandle], send_at: str, steps: list[datetime]) -> None:
    """Start before 02:00 local, then step the clock through the night; count the runs."""
    set_front_matter(site / "content" / "issues" / f"{ISSUE}.md", "send_at", send_at)
    with time_machine.travel(steps[0], tick=True) as clock:
        handle = start(site, handles)
        for step in steps[1:]:
            retries = runs(handle, "retry")
            clock.move_to(step)
            handle.wakeup()

            # the retry pass (every 5 min) ran: the scheduler has looked at `step`
            def retried(before: int = retries) -> bool:
                return runs(handle, "retry") > before

            wait_for(retried)
            assert runs(handle, f"send:{ISSUE}") <= 1
            assert runs(handle, "housekeeping") <= 1
        wait_for(lambda: runs(handle, f"send:{ISSUE}") == runs(handle, "housekeeping") == 1)
        assert len(outbox(site)) == 3
        assert f"send:{ISSUE}" not in next_runs(handle)
        stop(handle, handles)


@pytest.mark.database
@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
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


@pytest.mark.database
def test_spring_forward_night_sends_once(site: Path, handles: list[SchedulerHandle]) -> None:
    utc = [datetime(2025, 3, 30, 0, 50, tzinfo=UTC)]  # 01:50 CET
    utc += [datetime(2025, 3, 30, h, m, 1, tzinfo=UTC) for h, m in ((0, 59), (1, 30), (2, 30))]
    # 01:59 CET, 03:30 CEST (= the missing 02:30: send and purge), 04:30 CEST (nothing again)
    night(site, handles, "2025-03-30 02:30", utc)


@pytest.mark.database
def test_schedule_lists_what_serve_would_run(site: Path) -> None:
    with time_machine.travel(berlin(2020, 2, 4, 8, 0), tick=False):
        code, out, err = run_cli(site, "schedule")
        assert (code, err) == (0, "")
        assert out.splitlines() == [
            "Scheduler: not running; `comms serve` starts it with these jobs",
            "Upcoming jobs (Europe/Berlin):",
            "  Di., 4. Februar 2020, 08:05 Uhr  retry pass (every 5 min)",
            "  Di., 4. Februar 2020, 08:15 Uhr  refresh feeds (every 15 min)",
            "  Di., 4. Februar 2020, 09:00 Uhr  send #3 „Termine 2020: Schwerpunktkonferenz am "
            f"16. April und Sonderpreis“ ({ISSUE})",
            "  Mi., 5. Februar 2020, 02:30 Uhr  housekeeping: purge unconfirmed sign-ups, "
            "reduce ended ones (daily at 02:30)",
        ]
        code, out, _ = run_cli(site, "schedule", "--json")
    data = json.loads(out)
    assert data["scheduler"] is None and data["held"] == []
    assert [(job["id"], job["next_run"]) for job in data["jobs"]] == [
        ("retry", "2020-02-04T08:05:00+01:00"),
        ("refresh", "2020-02-04T08:15:00+01:00"),
        (f"send:{ISSUE}", "2020-02-04T09:00:00+01:00"),
        ("housekeeping", "2020-02-05T02:30:00+01:00"),
    ]


@pytest.mark.database
@pytest.mark.slow
def test_a_scheduler_that_loses_its_lease_stops(
    site: Path, handles: list[SchedulerHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SCHEDULE_LEASE_SECONDS", "10")  # a heartbeat every 2.5 s
    handle = start(site, handles)
    with handle.store.engine.begin() as conn:  # as if another process had taken it over
        conn.execute(sa.update(scheduler_lease).values(owner="elsewhere:1:abcd"))
    wait_for(lambda: not handle.scheduler.running, timeout=10)
    stop(handle, handles)
    kept = holder(handle.store.engine)
    assert kept is not None and kept.owner == "elsewhere:1:abcd"  # shutdown leaves it alone
