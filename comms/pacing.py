"""The machinery of a send run: a shared rate limit, run identity, a group-committing recorder."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time

from .database import now_utc
from .errors import CommsError
from .ledger import LedgerWriter, Outcome
from .store import Store


class TokenBucket:
    """A shared rate limit: `rate` messages per second, no bursts (STANDARDS S9)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def acquire(self) -> None:
        """Block until this caller may send one message."""
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)


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
    """Writes outcomes in group commits; `wait(seq)` blocks until an outcome is durable."""

    def __init__(self, store: Store, source: str) -> None:
        super().__init__(name="comms-ledger", daemon=True)
        self.writer = LedgerWriter(store, source)
        self.cond = threading.Condition()
        self.pending: list[Outcome] = []
        self.submitted = 0
        self.committed = 0
        self.closing = False
        self.error: BaseException | None = None

    def submit(self, outcome: Outcome) -> int:
        """Queue one outcome; returns its sequence number."""
        with self.cond:
            self.pending.append(outcome)
            self.submitted += 1
            self.cond.notify_all()
            return self.submitted

    def wait(self, seq: int) -> None:
        """Block until outcome `seq` is committed."""
        with self.cond:
            while self.committed < seq and self.error is None:
                self.cond.wait()
            if self.error is not None:
                raise CommsError(f"cannot write the send ledger: {self.error}")

    def close(self) -> None:
        """Write what is left and stop."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.join()

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.writer.close()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.pending and not self.closing:
                    self.cond.wait()
                if not self.pending:
                    return
                batch, self.pending, upto = self.pending, [], self.submitted
            try:
                self.writer.write(batch, now_utc())
            except Exception as exc:  # reported to every waiting worker
                with self.cond:
                    self.error = exc
                    self.cond.notify_all()
                return
            with self.cond:
                self.committed = upto
                self.cond.notify_all()
