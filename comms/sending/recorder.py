"""A send run's recorder: a thread that writes outcomes in group commits."""

from __future__ import annotations

import _thread
import heapq
import itertools
import logging
import threading
import time
from _thread import LockType
from functools import partial

from comms.core.clock import now_utc
from comms.core.errors import CommsError
from comms.db.outage import Patience
from comms.db.outcomes import Outcome
from comms.db.space import out_of_space
from comms.sending.ports import OutcomeWriter

log = logging.getLogger("comms.outbox")
#: How long outcomes of messages that went out are kept through a database out of space,
#: tried again every SPACE_POLL seconds, before the run gives up on them (seconds: the
#: default `delivery.lease_seconds`; past it another run may own the rows anyway).
SPACE_WAIT = 300.0
SPACE_POLL = 1.0
#: How long (seconds) an outcome that no connection needs yet may wait for others to join its
#: commit: each commit costs more than the outcomes in it (SQLite: the write lock and the log).
LINGER = 0.002


class Recorder(threading.Thread):
    """Writes outcomes in group commits; `wait(seq)` blocks until an outcome is durable.

    A submission wakes only the writer, a commit only the workers whose outcome it made
    durable (waking everyone each time costs more than the commit: each woken worker takes
    the lock and the GIL in turn, and most find their outcome still pending). Through a
    database outage the outcomes stay here and are written when it answers again
    (`patience`: bounded by the claims' lease, after which another worker may own the rows);
    the workers wait meanwhile, so no connection sends more than one message whose outcome is
    not yet durable.

    Where several connections share the recorder (`members`), a commit waits until one of them
    needs an outcome (`wait`, `needed`), each has one pending, or LINGER passed: a connection
    needs its outcome only before its next message's final ".", so the others' outcomes join
    the commit meanwhile instead of each paying for one.
    """

    def __init__(
        self, writer: OutcomeWriter, patience: Patience | None = None, members: int = 1
    ) -> None:
        super().__init__(name="comms-ledger", daemon=True)
        self.writer = writer
        self.patience = patience or Patience("recording outcomes", limit=0.0)
        self.members = members
        #: The highest sequence number a worker needs committed now.
        self.wanted = 0
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)
        #: Workers waiting for a commit: (sequence number, arrival, a lock held until then),
        #: lowest first.
        self.waiting: list[tuple[int, int, LockType]] = []
        self._arrivals = itertools.count()
        self.pending: list[Outcome] = []
        self.submitted = 0
        self.committed = 0
        self.closing = False
        self.error: BaseException | None = None
        #: Since when (monotonic) the database has refused outcomes for want of space.
        self.full_since: float | None = None

    def submit(self, outcome: Outcome) -> int:
        """Queue one outcome; returns its sequence number."""
        with self.work:
            self.pending.append(outcome)
            self.submitted += 1
            # The first wakes the writer (its LINGER starts), a full group has it commit.
            if len(self.pending) in (1, self.members):
                self.work.notify()
            return self.submitted

    def durable(self, seq: int) -> bool:
        """Whether `wait(seq)` returns (or raises) at once: outcome `seq` is committed, or
        nothing will be any more."""
        return self.committed >= seq or self.error is not None

    def needed(self, seq: int) -> bool:
        """`durable(seq)`; if not, outcome `seq` is needed soon: its commit starts now."""
        if self.durable(seq):
            return True
        with self.work:
            self._want(seq)
        return False

    def _want(self, seq: int) -> None:
        if seq > self.wanted:
            self.wanted = seq
            self.work.notify()

    def wait(self, seq: int) -> None:
        """Block until outcome `seq` is committed."""
        with self.lock:
            if self.committed < seq and self.error is None:
                self._want(seq)
                waiter = _thread.allocate_lock()
                waiter.acquire()
                heapq.heappush(self.waiting, (seq, next(self._arrivals), waiter))
            else:
                waiter = None
        if waiter is not None:
            waiter.acquire()  # released by `_durable` once `seq` is committed, or on an error
        if self.error is not None:
            raise CommsError(f"cannot write the send ledger: {self.error}")

    def _durable(self, upto: int) -> None:
        """Outcomes up to `upto` are committed: wake the workers that wait for them."""
        with self.lock:
            self.committed = upto
            while self.waiting and self.waiting[0][0] <= upto:
                heapq.heappop(self.waiting)[2].release()

    def _failed(self, exc: BaseException) -> None:
        """Nothing more will be committed: wake every waiting worker with the error."""
        with self.lock:
            self.error = exc
            while self.waiting:
                heapq.heappop(self.waiting)[2].release()

    def close(self) -> None:
        """Write what is left and stop."""
        with self.work:
            self.closing = True
            self.work.notify()
        self.join()

    def _write(self, batch: list[Outcome]) -> None:
        self.writer.write(batch, now_utc())

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
                self._gather()
                batch, self.pending, upto = self.pending, [], self.submitted
            try:
                self.patience.call(partial(self._write, batch))
            except Exception as exc:  # reported to every waiting worker
                if self._kept(batch, exc):
                    continue
                self._failed(exc)
                return
            if self.full_since is not None:
                self.full_since = None
                log.warning("the database took the outcomes kept while it was full; going on")
            self._durable(upto)

    def _gather(self) -> None:
        """With the lock held and an outcome pending: wait until the group should commit."""
        until = None
        while not (
            self.closing or self.wanted > self.committed or len(self.pending) >= self.members
        ):
            now = time.monotonic()
            until = until or now + LINGER
            if now >= until:
                return
            self.work.wait(until - now)

    def _kept(self, batch: list[Outcome], exc: Exception) -> bool:
        """True when the database refused `batch` for want of space and it is still worth
        trying: the batch goes back to the front of the queue after a pause. Meanwhile the
        workers wait for it, so no further message goes out unrecorded; messages that went
        out are recorded once space is freed, not sent again by a later run."""
        if not out_of_space(exc):
            return False
        now = time.monotonic()
        if self.full_since is None:
            self.full_since = now
            log.warning(
                "cannot record %d outcome(s) of messages already handed over: %s; keeping "
                "them and trying again every %g s for up to %g s: free space where the "
                "database lives",
                len(batch),
                str(getattr(exc, "orig", exc)),
                SPACE_POLL,
                SPACE_WAIT,
            )
        elif now - self.full_since > SPACE_WAIT:
            return False
        time.sleep(SPACE_POLL)
        with self.work:
            self.pending[:0] = batch
        return True
