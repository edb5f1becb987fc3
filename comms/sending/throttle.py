"""The shared rate limit of a send run: a token bucket that adapts to the receiving side."""

from __future__ import annotations

import threading
import time
from collections import deque


class TokenBucket:
    """A shared rate limit: `rate` messages per second, no bursts (docs/requirements.md S9).

    It adapts to the receiving side: `slow_down()` (after a deferral such as 421 or 4.7.x)
    halves the pace, `speed_up()` (after each delivery) wins a little of it back, up to the
    configured rate; an unlimited bucket slows to half of what it achieved lately.
    """

    #: Slowest pace after repeated slow-downs (messages per second).
    FLOOR = 1.0
    #: How many recent sends tell the achieved pace of an unlimited bucket.
    WINDOW = 50

    def __init__(self, rate: float) -> None:
        self.limit = rate
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()
        self._recent: deque[float] = deque(maxlen=self.WINDOW)

    def acquire(self) -> None:
        """Block until this caller may send one message."""
        with self._lock:
            now = time.monotonic()
            self._recent.append(now)
            if self.rate <= 0:
                return
            slot = max(self._next, now)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)

    def slow_down(self) -> None:
        """The receiver deferred us for going too fast: halve the pace."""
        with self._lock:
            current = self.rate
            if current <= 0:
                span = self._recent[-1] - self._recent[0] if len(self._recent) > 1 else 0.0
                current = (len(self._recent) - 1) / span if span > 0 else 2 * self.FLOOR
            self.rate = max(self.FLOOR, current / 2)

    def speed_up(self) -> None:
        """A message went through: win back a little pace (additive increase)."""
        with self._lock:
            if self.rate <= 0:
                return
            step = max(0.05 * self.rate, 0.1)
            raised = self.rate + step
            if self.limit > 0:
                self.rate = min(self.limit, raised)
            elif raised >= 1000:
                self.rate = 0  # back to unlimited
            else:
                self.rate = raised
