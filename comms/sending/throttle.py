"""The machinery of a send run: a shared rate limit, run identity, a group-committing recorder."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import deque

from comms.core.errors import CommsError
from comms.db.engine import now_utc
from comms.db.ledger import LedgerWriter, Outcome
from comms.db.subscribers import Store


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


def owner_id() -> str:
    """Who claims rows in this run: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def is_abandoned(owner: str) -> bool:
    """True when `owner` is a run on this host whose process no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's run: wait for its lease to run out
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return int(pid_text) != os.getpid() and _is_zombie(int(pid_text))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Recorder(threading.Thread):
    """Writes outcomes in group commits; `wait(seq)` blocks until an outcome is durable.

    Two conditions on one lock: a submission wakes only the writer, a commit only the workers
    (waking everyone each time costs more than the commit).
    """

    def __init__(self, store: Store, source: str) -> None:
        super().__init__(name="comms-ledger", daemon=True)
        self.writer = LedgerWriter(store, source)
        lock = threading.Lock()
        self.work = threading.Condition(lock)
        self.durable = threading.Condition(lock)
        self.pending: list[Outcome] = []
        self.submitted = 0
        self.committed = 0
        self.closing = False
        self.error: BaseException | None = None

    def submit(self, outcome: Outcome) -> int:
        """Queue one outcome; returns its sequence number."""
        with self.work:
            self.pending.append(outcome)
            self.submitted += 1
            self.work.notify()
            return self.submitted

    def wait(self, seq: int) -> None:
        """Block until outcome `seq` is committed."""
        with self.durable:
            while self.committed < seq and self.error is None:
                self.durable.wait()
            if self.error is not None:
                raise CommsError(f"cannot write the send ledger: {self.error}")

    def close(self) -> None:
        """Write what is left and stop."""
        with self.work:
            self.closing = True
            self.work.notify()
        self.join()

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.writer.close()

    def _loop(self) -> None:
        while True:
            with self.work:
                while not self.pending and not self.closing:
                    self.work.wait()
                if not self.pending:
                    return
                batch, self.pending, upto = self.pending, [], self.submitted
            try:
                self.writer.write(batch, now_utc())
            except Exception as exc:  # reported to every waiting worker
                with self.durable:
                    self.error = exc
                    self.durable.notify_all()
                return
            with self.durable:
                self.committed = upto
                self.durable.notify_all()
