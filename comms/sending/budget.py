"""One send rate for all workers of a campaign: slots reserved in the database, paced locally."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from comms.core.clock import epoch
from comms.sending.throttle import TokenBucket

#: How much sending time one reservation covers (seconds): one database round trip per this
#: much, and the most a worker that stops early leaves unused.
GRANT_SECONDS = 0.25

Reserve = Callable[[int, float, float], float]


class SharedBudget:
    """`delivery.rate` messages per second for every worker of one campaign together.

    Each worker reserves a few slots at a time from the campaign's row in `send_budget` (one
    UPDATE per GRANT_SECONDS of sending), waits for each slot, then asks its own TokenBucket,
    which keeps adapting the pace to the receiving side. Workers' clocks must agree (NTP): a
    slot is a wall-clock time. Without a rate it is the bucket alone.
    """

    def __init__(
        self,
        reserve: Reserve | None,
        bucket: TokenBucket,
        rate: float,
        clock: Callable[[], float] = epoch,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._reserve = reserve if rate > 0 else None
        self.bucket, self.rate, self._clock = bucket, rate, clock
        #: How to wait for a slot; the run passes its stop event's `wait`, so a stop wakes it.
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slot = 0.0
        self._left = 0
        #: Reservations made (database round trips).
        self.reservations = 0

    def acquire(self) -> None:
        """Block until this worker may send one message within the campaign's rate."""
        if self._reserve is not None:
            with self._lock:
                if self._left == 0:
                    count = max(1, round(self.rate * GRANT_SECONDS))
                    self._slot = self._reserve(count, self.rate, self._clock())
                    self._left = count
                    self.reservations += 1
                slot = self._slot
                self._slot += 1.0 / self.rate
                self._left -= 1
            wait = slot - self._clock()
            if wait > 0 and self._sleep(wait):
                return  # stopped while waiting: the caller hands the row back
        self.bucket.acquire()
