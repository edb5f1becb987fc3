"""Work shared out to forked worker processes (`render.workers`): when it is safe, how many,
and the map that runs a job over tasks in them."""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from comms.core.errors import LocalError

Task = TypeVar("Task")
Made = TypeVar("Made")

#: The most processes `render.workers = 0` starts: each copies the pages of memory it writes
#: to (about 80 MB for a build of 2,600 items), and a container's CPU quota does not show in
#: the cores a process may use, so one per core of a large host would cost memory for nothing.
AUTO_WORKERS_MAX = 4


def workers() -> int:
    """How many processes share work by default: one per core this process may use (known
    on Linux; elsewhere 1), at most `AUTO_WORKERS_MAX`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return min(cores, AUTO_WORKERS_MAX)


def can_fork() -> bool:
    """Whether this process may fork workers: forking copies one thread only, so with others
    running (a server's jobs) a lock one of them holds would stay held in the worker forever."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


#: The job of the map under way: the workers inherit it when they fork, with everything it
#: reaches, so neither it nor the build's data is pickled; only tasks and results are.
_JOB: Callable[[Any], Any] | None = None
#: Linux's prctl option that sends a process a signal when its parent dies.
_PR_SET_PDEATHSIG = 1


def _run(task: Any) -> Any:
    assert _JOB is not None
    return _JOB(task)


def _start_worker(parent: int) -> None:
    """Set up a worker: freeze its garbage collector, and let it die with its parent."""
    # A worker's collector would touch every object it inherited and so copy every page of
    # memory it shares with the parent: frozen first, it leaves them alone. Frozen here, not
    # in the parent, where a batch (`collector.batch`) owns the freeze.
    gc.freeze()
    # A parent killed outright (the out-of-memory killer, kill -9) does not end the workers
    # of a ProcessPoolExecutor, and they hold what it held: the build's lock, so every later
    # build would wait for them forever.
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # a libc without prctl: only the check below
            pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def forked_map(
    job: Callable[[Task], Made], tasks: Sequence[Task], processes: int
) -> list[Made] | None:
    """`job(task)` for each of `tasks`, in `processes` forked workers (0: `workers()`), which
    take the next task when they finish one; in the order of `tasks`. None when there is
    nothing to share (one process, one task), this process may not fork (`can_fork`), the
    system has no process pools (no POSIX semaphores), or a job maps again: the caller does
    the work itself. What a job raises is raised here; a worker that dies (the kernel's
    out-of-memory killer) raises LocalError, never leaves the caller waiting, and workers
    die with the caller (on Linux)."""
    global _JOB
    processes = min(processes or workers(), len(tasks))
    if processes < 2 or _JOB is not None or not can_fork():
        return None
    try:
        pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
    except (OSError, NotImplementedError, ImportError):
        return None
    _JOB = job
    try:
        with pool:
            return list(pool.map(_run, tasks))
    except BrokenProcessPool as exc:
        raise LocalError(
            f"a worker process ended abruptly (out of memory?) or sent back what cannot be "
            f"read: with render.workers = 1 (COMMS_RENDER_WORKERS=1) all runs in one "
            f"process; it had {processes}"
        ) from exc
    finally:
        _JOB = None
