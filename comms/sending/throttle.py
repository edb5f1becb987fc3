"""The shared rate limit of a send run: a token bucket that adapts to the receiving side (AIMD)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """A shared rate limit: `rate` messages per second, no bursts (docs/requirements.md S9).

    It adapts to the receiving side by additive increase / multiplicative decrease, as TCP's
    congestion control and Postfix's destination concurrency feedback do:

    - `slow_down()`: the server asked us to go slower (421, "too many connections", HTTP 429;
      see `comms.mail.replies.asks_to_slow_down`). The pace drops to `BETA` (0.7) of itself,
      but at most once per *reaction window*: the messages already on their way when the
      signal came report the same congestion, like the rest of a TCP window or a Postfix
      "cohort", and must not cut the pace again. The window is the time the `cohort` (the
      connections in flight) needs at the new pace, at least `MIN_WINDOW`. An unlimited bucket
      first takes the pace it achieved lately as its rate. When a whole cohort of signals comes
      with no delivery in between (the server takes nothing), the pace drops to `FLOOR` at
      once, as Postfix throttles a destination whose whole cohort failed and as TCP restarts
      from one segment after a timeout.
    - `speed_up()`: a message was delivered. The pace grows linearly in time, by the amount
      of the last cut over `RECOVERY` seconds (each delivery adds `step / rate`), up to the
      configured rate; an unlimited bucket becomes unlimited again at the pace it had before
      its first cut.
    - a per-recipient deferral (greylisting) calls neither: it says nothing about our pace.

    `acquire()` blocks until the caller may send one message. These three methods and the
    `rate`/`limit` attributes are the whole interface: a wrapper (a rate budget shared by
    several processes) can delegate to them. `clock` and `sleep` are injectable for tests.
    """

    #: Slowest pace after repeated slow-downs (messages per second).
    FLOOR = 1.0
    #: Multiplicative decrease: the share of the pace kept after a slow-down signal.
    BETA = 0.7
    #: Seconds in which additive increase wins back one cut, if no further signal comes.
    RECOVERY = 30.0
    #: Shortest reaction window (seconds).
    MIN_WINDOW = 1.0
    #: How many recent sends tell the achieved pace of an unlimited bucket.
    WINDOW = 50

    def __init__(
        self,
        rate: float,
        cohort: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.limit = rate
        self.rate = rate
        self.cohort = max(1, cohort)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = clock()
        self._recent: deque[float] = deque(maxlen=self.WINDOW)
        self._calm_until = float("-inf")  # slow-downs before this belong to the last cut
        self._step = 0.0  # additive increase, messages per second per second
        self._ceiling = 0.0  # an unlimited bucket's pace before its first cut
        self._unanswered = 0  # slow-down signals since the last delivery
        #: Cuts made so far (tests and benchmarks read it).
        self.cuts = 0

    def acquire(self) -> None:
        """Block until this caller may send one message."""
        with self._lock:
            now = self._clock()
            self._recent.append(now)
            if self.rate <= 0:
                return
            slot = max(self._next, now)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            self._sleep(slot - now)

    def _achieved(self) -> float:
        span = self._recent[-1] - self._recent[0] if len(self._recent) > 1 else 0.0
        return (len(self._recent) - 1) / span if span > 0 else 2 * self.FLOOR

    def slow_down(self) -> bool:
        """The receiver asked us to slow down: cut the pace, once per reaction window.

        Returns whether this signal cut the pace (False: it belongs to the last cut).
        """
        with self._lock:
            now = self._clock()
            self._unanswered += 1
            failed_cohort = self._unanswered >= self.cohort and self.rate != self.FLOOR
            if now < self._calm_until and not failed_cohort:
                return False
            current = self.rate
            if current <= 0:
                current = self._achieved()
                self._ceiling = max(self._ceiling, current)
            lowered = self.FLOOR if failed_cohort else max(self.FLOOR, current * self.BETA)
            if lowered < current:  # at the floor already: keep the step of the real cut
                self._step = max(0.1, (current - lowered) / self.RECOVERY)
            self.rate = lowered
            self._calm_until = now + max(self.MIN_WINDOW, self.cohort / lowered)
            # The slots already handed out at the old pace are not taken back, new ones space.
            self._next = max(self._next, now + 1.0 / lowered)
            self.cuts += 1
            return True

    def speed_up(self) -> None:
        """A message went through: win back pace linearly in time (additive increase)."""
        with self._lock:
            self._unanswered = 0
            if self.rate <= 0 or self.rate == self.limit:
                return
            raised = self.rate + self._step / self.rate
            if self.limit > 0:
                self.rate = min(self.limit, raised)
            elif raised >= self._ceiling:
                self.rate = 0  # back to unlimited
            else:
                self.rate = raised
