"""Work shared out to forked worker processes (`render.workers`): when it is safe, how many,
and the map that runs a job over tasks in them."""

from __future__ import annotations

import gc
import multiprocessing
import os
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


def _run(task: Any) -> Any:
    assert _JOB is not None
    return _JOB(task)


def forked_map(
    job: Callable[[Task], Made], tasks: Sequence[Task], processes: int
) -> list[Made] | None:
    """`job(task)` for each of `tasks`, in `processes` forked workers (0: `workers()`), which
    take the next task when they finish one; in the order of `tasks`. None when there is
    nothing to share (one process, one task) or this process may not fork (`can_fork`): the
    caller does the work itself. What a job raises is raised here; a worker that dies (the
    kernel's out-of-memory killer) raises LocalError, never leaves the caller waiting."""
    global _JOB
    processes = min(processes or workers(), len(tasks))
    if processes < 2 or not can_fork():
        return None
    _JOB = job
    try:
        # A worker's garbage collector would touch every object it inherited and so copy
        # every page of memory it shares with this process: frozen first, it leaves them
        # alone. Frozen there, not here, where a batch (`collector.batch`) owns the freeze.
        with ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("fork"), initializer=gc.freeze
        ) as pool:
            return list(pool.map(_run, tasks))
    except BrokenProcessPool:
        raise LocalError(
            f"a worker process ended abruptly (out of memory?): with render.workers = 1 "
            f"(COMMS_RENDER_WORKERS=1) all runs in one process; it had {processes}"
        ) from None
    finally:
        _JOB = None
