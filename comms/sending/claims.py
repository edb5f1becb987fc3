"""Claims across workers: renew this run's leases while it sends, take over a dead run's rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from comms.core.process import is_abandoned
from comms.db.outage import Patience, Stopped
from comms.sending.ports import SendLedger

#: How often a run with nothing left to claim looks again at other workers' rows (seconds).
POLL = 0.5
#: The share of a lease after the last renewal during which a run may still send its rows;
#: the rest is the margin for the message in flight and for the hosts' clocks.
SAFE_SHARE = 0.8
#: How soon a failed renewal is tried again (seconds).
RETRY = 1.0


class ClaimKeeper:
    """Keeps the claims of one run alive and, when the run runs dry, waits for other workers.

    Several `comms send ISSUE` (or scheduler) processes on one database share a campaign. Each
    renews the lease of the rows it holds every third of `delivery.lease_seconds`, so a live
    run never loses its rows however slowly it sends. A run with nothing left to claim waits
    while other runs hold rows: they end as outcomes, or, when their owner died, they come
    free once its lease ran out (at once for a dead process on the same host) and this run
    takes them over. The wait is bounded: when no row of the others finished for a whole lease
    (plus the longest in-run retry), the run stops waiting and leaves them to a later run.
    """

    def __init__(
        self,
        ledger: SendLedger,
        cid: int,
        owner: str,
        lease: timedelta,
        clock: Callable[[], datetime],
        retry_window: float,
        patience: Patience | None = None,
    ) -> None:
        self.ledger, self.cid, self.owner = ledger, cid, owner
        self.lease, self.clock = lease, clock
        self.retry_window = retry_window
        #: How the waits for other workers go through a database outage.
        self.database = patience or Patience("claims", limit=0.0)
        self.patience = lease.total_seconds() + retry_window
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._left: int | None = None
        self._deadline = 0.0
        #: Rows of other runs this run took over.
        self.taken_over = 0
        self._renewed = time.monotonic()

    def start(self) -> None:
        """Start renewing this run's leases in the background."""
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._renew, name="comms-lease", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop renewing (the run's rows are all recorded by now)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def holds(self) -> bool:
        """False once no renewal has succeeded for most of a lease.

        Every row this run claimed is leased until at least the last successful renewal plus
        a lease. Past that, another worker may have taken a row over: sending it would send it
        twice, so the run must stop (its late outcomes cannot undo the other's, see
        `comms.db.outcomes`).
        """
        return time.monotonic() - self._renewed < self.lease.total_seconds() * SAFE_SHARE

    def _renew(self) -> None:
        every = self.lease.total_seconds() / 3
        wait = every
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self.ledger.renew(self.cid, self.owner, self.clock() + self.lease)
            except Exception:  # a missed heartbeat is tried again soon: `holds` counts on it
                wait = min(RETRY, every)
                continue
            self._renewed = started
            # Every third of a lease from the start of the last one, however long it took.
            wait = max(0.0, every - (time.monotonic() - started))

    def _look(self) -> tuple[int, int]:
        """Take over a dead run's rows; else count the rows other runs still hold."""
        now = self.clock()
        freed = self.ledger.release_orphans(self.cid, is_abandoned, now, keep=self.owner)
        if freed:
            return freed, 0
        soon = now + timedelta(seconds=self.retry_window)
        return 0, self.ledger.unfinished_elsewhere(self.cid, self.owner, soon)

    def wait_for_others(self, stop: threading.Event) -> bool:
        """With nothing left to claim: True to claim again (after a short wait), False to end."""
        try:
            freed, left = self.database.call(self._look)
        except Stopped:
            return False
        if freed:
            self.taken_over += freed
            return True
        if not left:
            return False
        if self._left is None or left < self._left:
            self._left, self._deadline = left, time.monotonic() + self.patience
        if time.monotonic() > self._deadline:
            return False  # the others made no progress for a whole lease: leave them be
        stop.wait(POLL)
        return not stop.is_set()
