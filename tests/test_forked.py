"""Forked workers (`comms.core.forked`): the results of a map in order, made in other
processes, errors raised in the caller, and no fork beside other threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from comms.core import forked
from comms.core.config import load_config

#: Run in a fresh process: a test process has other threads (xdist's, servers of other tests),
#: and beside other threads `forked_map` never forks.
SCRIPT = """
import json, os, threading, time
from comms.core.forked import forked_map

here = os.getpid()
data = {n: n * n for n in range(30)}  # inherited by the workers, never pickled

def job(task):
    time.sleep(0.01 * (task % 3))  # uneven tasks: a worker that is done takes the next
    return task, data[task], os.getpid()

made = forked_map(job, list(range(30)), 3)
one = forked_map(job, [1], 3)

def fails(task):
    raise ValueError(f"task {task} failed")

try:
    forked_map(fails, [1, 2], 2)
    error = None
except ValueError as exc:
    error = str(exc)

def dies(task):
    if task == 3:
        os.kill(os.getpid(), 9)  # as the kernel's out-of-memory killer ends a process
    return task

try:
    forked_map(dies, list(range(6)), 2)
    died = None
except Exception as exc:
    died = f"{type(exc).__name__}: {exc}"

nested = forked_map(lambda task: forked_map(str, [1, 2], 2), [1, 2], 2)

stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
beside = forked_map(job, list(range(4)), 2)
stop.set()
other.join()
print(json.dumps(
    {"here": here, "made": made, "one": one, "error": error, "died": died, "beside": beside,
     "nested": nested}
))
"""


def test_a_map_runs_in_forked_workers_in_order_and_raises_here() -> None:
    """Results in order, made in other processes; errors and dead workers raised here."""
    answer = subprocess.run(
        [sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True, timeout=120
    )
    result = json.loads(answer.stdout.splitlines()[-1])
    made = result["made"]
    assert [(task, square) for task, square, _ in made] == [(n, n * n) for n in range(30)]
    pids = {pid for _, _, pid in made}
    assert result["here"] not in pids and 1 < len(pids) <= 3
    # Nothing to share: the caller does the work itself.
    assert result["one"] is None
    assert result["error"] in ("task 1 failed", "task 2 failed")
    # A worker killed: an error that says what to do, not a map that waits forever.
    assert result["died"].startswith("LocalError: a worker process ended abruptly")
    assert "render.workers = 1" in result["died"]
    assert result["beside"] is None
    # A job that maps again does that work itself, in its worker.
    assert result["nested"] == [None, None]


def test_no_fork_beside_another_thread() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not forked.can_fork()
        assert forked.forked_map(str, [1, 2, 3], 2) is None
    finally:
        stop.set()
        other.join()


def test_the_default_is_one_worker_per_core_and_at_most_a_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_config(None, environ={}).settings.render.workers == 0
    for cores, expected in ((1, 1), (2, 2), (64, forked.AUTO_WORKERS_MAX)):
        monkeypatch.setattr(
            os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False
        )
        assert forked.workers() == expected


#: A map whose workers note their process ids in a folder, then wait long.
ORPHANS = """
import os, sys, time
from pathlib import Path
from comms.core.forked import forked_map

folder = Path(sys.argv[1])

def job(task):
    (folder / str(os.getpid())).touch()
    time.sleep(60)
    return task

forked_map(job, [1, 2], 2)
"""


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(sys.platform != "linux", reason="workers die with their parent on Linux")
def test_workers_die_with_a_parent_killed_outright(tmp_path: Path) -> None:
    """A parent the out-of-memory killer ends leaves no worker behind: they would hold its
    locks (the build's) and every later build would wait for them."""
    parent = subprocess.Popen([sys.executable, "-c", ORPHANS, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [int(path.name) for path in tmp_path.iterdir()]
        assert len(pids) == 2 and all(map(_alive, pids))
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, pids))


def test_a_system_without_process_pools_does_the_work_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where POSIX semaphores are missing (some sandboxes), the pool cannot be made: the
    caller does the work itself instead of failing the build."""

    def no_semaphores(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(forked, "can_fork", lambda: True)
    monkeypatch.setattr(forked, "ProcessPoolExecutor", no_semaphores)
    assert forked.forked_map(str, [1, 2, 3], 2) is None
