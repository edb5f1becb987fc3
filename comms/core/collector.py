"""The garbage collector held back while a batch (reading content, a build) makes many objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The thresholds while a batch runs: a build keeps millions of objects alive (the site, its
#: pages), and with the default ones the collector walked all of them again and again — a
#: tenth of a cold build. Cycles are still collected, only less often (a cold build of the
#: bench site peaked at the same memory).
BATCH_THRESHOLDS = (50_000, 20, 100)

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def batch() -> Iterator[None]:
    """Raise the collector's thresholds until the last batch running in this process ends
    (batches nest and overlap across threads: the scheduler's jobs and the preview build).

    What lives when a batch starts (modules, the site a build was given) is frozen
    until the last ends: the collections a batch still makes walk only what it made, and
    no full collection walks the site and its pages again when it ends (a cold build of the
    bench site spent about 1 s in them). Unfrozen, those objects are in the oldest generation,
    collected as before.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            raised = (max(now, high) for now, high in zip(_saved, BATCH_THRESHOLDS, strict=True))
            gc.set_threshold(*raised)
        # What lives now is frozen, also in a nested batch: what the outer one made so far
        # (the site a command read before it builds) is not walked again either.
        gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.unfreeze()
                gc.set_threshold(*_saved)
                _saved = None
