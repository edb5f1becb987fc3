"""A send run's recorder: outcomes written in group commits, by the worker that needs one."""

from __future__ import annotations

import logging
import threading
import time
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
#: How long (seconds) an outcome that no connection has needed yet waits before the
#: recorder's thread commits it: a connection's next message usually commits it first, with
#: the others' outcomes pending by then.
LINGER = 0.01


class Recorder(threading.Thread):
    """Writes outcomes in group commits; `wait(seq)` returns once an outcome is durable.

    A connection needs its outcome durable only before its next message's final ".". The
    worker that needs it commits every outcome pending at that moment itself (`wait`), the
    other connections' included: handing the commit to another thread and being woken after
    it costs more than the commit (two thread switches, and the GIL taken in turn), and the
    worker waits either way. One commit runs at a time (`committing`); a worker whose outcome
    another worker is committing waits for that commit, then finds it durable. The thread
    commits only what no connection needed within LINGER (the last messages of a run, a
    worker with nothing more to send) and what is left at `close`.

    Through a database outage the outcomes stay here and are written when it answers again
    (`patience`: bounded by the claims' lease, after which another worker may own the rows);
    the workers wait meanwhile, so no connection sends more than one message whose outcome is
    not yet durable.
    """

    def __init__(self, writer: OutcomeWriter, patience: Patience | None = None) -> None:
        super().__init__(name="comms-ledger", daemon=True)
        self.writer = writer
        self.patience = patience or Patience("recording outcomes", limit=0.0)
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)
        #: Held while a group is written: one commit at a time, by a worker or the thread.
        self.committing = threading.Lock()
        self.pending: list[Outcome] = []
        self.submitted = 0
        self.committed = 0
        self.closing = False
        #: The thread sleeps until a submission wakes it (else it looks every LINGER).
        self.idle = False
        self.error: BaseException | None = None
        #: Since when (monotonic) the database has refused outcomes for want of space.
        self.full_since: float | None = None

    def submit(self, outcome: Outcome) -> int:
        """Queue one outcome; returns its sequence number."""
        with self.work:
            self.pending.append(outcome)
            self.submitted += 1
            if self.idle:  # at most one wake-up per LINGER, not one per outcome
                self.idle = False
                self.work.notify()
            return self.submitted

    def durable(self, seq: int) -> bool:
        """Whether `wait(seq)` returns (or raises) at once: outcome `seq` is committed, or
        nothing will be any more."""
        return self.committed >= seq or self.error is not None

    def wait(self, seq: int) -> None:
        """Return once outcome `seq` is committed: commit the pending group now, unless a
        commit that takes it is under way (then wait for that one)."""
        if not self.durable(seq):
            with self.committing:
                while not self.durable(seq):
                    self._commit()
        if self.error is not None:
            raise CommsError(f"cannot write the send ledger: {self.error}")

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
        while self.error is None:
            with self.work:
                while not self.pending and not self.closing:
                    self.idle = True
                    self.work.wait()
                if not self.closing:
                    self.work.wait(LINGER)  # a connection that needs them commits them first
                closing = self.closing
            with self.committing:
                while self.pending and self.error is None:
                    self._commit()
            if closing:
                return

    def _commit(self) -> None:
        """With `committing` held: write every pending outcome in one transaction."""
        with self.lock:
            batch, self.pending, upto = self.pending, [], self.submitted
        if not batch:
            return
        try:
            self.patience.call(partial(self._write, batch))
        except Exception as exc:  # reported to every waiting worker
            if not self._kept(batch, exc):
                self._failed(exc)
            return
        except BaseException as exc:  # e.g. KeyboardInterrupt: the group is lost, so say so
            self._failed(exc)
            raise
        if self.full_since is not None:
            self.full_since = None
            log.warning("the database took the outcomes kept while it was full; going on")
        self.committed = upto

    def _failed(self, exc: BaseException) -> None:
        """Nothing more will be committed: every waiting worker gets the error (they read it
        without a lock, as `committed`: the writer holds `committing`, the only lock a wait
        takes)."""
        self.error = exc

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
