"""The one timing helper of the benchmarks: the median wall time of repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(
    work: Callable[[], object],
    rounds: int,
    warm: bool = False,
    before: Callable[[], object] | None = None,
) -> float:
    """The median seconds of `rounds` runs of `work`; with `warm`, one untimed run first
    (templates compiled, catalogs loaded); `before` runs untimed before each (a cache reset)."""
    if warm:
        work()
    samples = []
    for _ in range(rounds):
        if before is not None:
            before()
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
