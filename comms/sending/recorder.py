"""A send run's recorder: a thread that writes outcomes in group commits."""

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


class Recorder(threading.Thread):
    """Writes outcomes in group commits; `wait(seq)` blocks until an outcome is durable.

    Two conditions on one lock: a submission wakes only the writer, a commit only the workers
    (waking everyone each time costs more than the commit). Through a database outage the
    outcomes stay here and are written when it answers again (`patience`: bounded by the
    claims' lease, after which another worker may own the rows); the workers wait meanwhile,
    so no connection sends more than one message whose outcome is not yet durable.
    """

    def __init__(self, writer: OutcomeWriter, patience: Patience | None = None) -> None:
        super().__init__(name="comms-ledger", daemon=True)
        self.writer = writer
        self.patience = patience or Patience("recording outcomes", limit=0.0)
        lock = threading.Lock()
        self.work = threading.Condition(lock)
        self.durable = threading.Condition(lock)
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
                batch, self.pending, upto = self.pending, [], self.submitted
            try:
                self.patience.call(partial(self._write, batch))
            except Exception as exc:  # reported to every waiting worker
                if self._kept(batch, exc):
                    continue
                with self.durable:
                    self.error = exc
                    self.durable.notify_all()
                return
            if self.full_since is not None:
                self.full_since = None
                log.warning("the database took the outcomes kept while it was full; going on")
            with self.durable:
                self.committed = upto
                self.durable.notify_all()

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
