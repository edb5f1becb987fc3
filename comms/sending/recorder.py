"""A send run's recorder: a thread that writes outcomes in group commits."""

from __future__ import annotations

import threading
from functools import partial

from comms.core.clock import now_utc
from comms.core.errors import CommsError
from comms.db.outage import Patience
from comms.db.outcomes import Outcome
from comms.sending.ports import OutcomeWriter


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
                with self.durable:
                    self.error = exc
                    self.durable.notify_all()
                return
            with self.durable:
                self.committed = upto
                self.durable.notify_all()
