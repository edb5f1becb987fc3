"""The scheduler with a controlled clock: sends at their time, restarts, staleness, the lease."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import time_machine

from comms.lease import Lease
from comms.scheduler import SchedulerHandle, start_scheduler

from .ledgerkit import run_cli
from .schedkit import (
    ISSUE,
    SECRET,
    berlin,
    open_site,
    outbox,
    set_front_matter,
    wait_for,
    with_subscribers,
)


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


def sent(root: Path) -> int:
    code, out, err = run_cli(root, "status", ISSUE, "--json")
    assert code == 0, err
    counts: dict[str, int] = json.loads(out)["counts"]
    return counts["sent"]


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
    f"held: {ISSUE} was due at Di., 4. Februar 2020, 09:00 Uhr; release with `comms send {ISSUE}`"
)


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
    code, out, err = run_cli(site, "send", ISSUE)  # the editor releases it
    assert code == 0, err
    assert len(outbox(site)) == 3
    code, out, _ = run_cli(site, "status")
    assert HELD not in out


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


def test_failed_jobs_are_logged(
    site: Path, handles: list[SchedulerHandle], caplog: pytest.LogCaptureFixture
) -> None:
    path = site / "content" / "issues" / f"{ISSUE}.md"
    with time_machine.travel(berlin(2020, 2, 4, 8, 59), tick=True) as clock:
        handle = start(site, handles)
        path.write_text("---\nnumber: [\n", encoding="utf-8")
        clock.move_to(berlin(2020, 2, 4, 9, 0, 1))
        handle.wakeup()
        wait_for(lambda: ("error", f"send:{ISSUE}") in handle.events)
        clock.move_to(berlin(2020, 2, 4, 9, 14, 1))
        handle.wakeup()
        wait_for(lambda: ("error", "refresh") in handle.events)
        stop(handle, handles)
    assert (
        f"job send:{ISSUE} failed: scheduled send of {ISSUE}: the issue is gone or has errors"
        in caplog.text
    )
    assert "job refresh failed: 1 content error(s)" in caplog.text
    assert outbox(site) == []


def test_apscheduler_is_the_3_series() -> None:
    assert version("apscheduler").split(".")[0] == "3"  # 4.x is a pre-release (STANDARDS R6)
