"""`comms serve` stands by for the scheduler (taking it over when its lease frees) and follows
what other hosts publish."""

from __future__ import annotations

import logging
import threading

from comms.core.config import Config
from comms.db.outage import noted
from comms.db.store import Store
from comms.schedule.follow import Follower
from comms.schedule.runner import SchedulerHandle, start_scheduler

log = logging.getLogger("comms.schedule")


class Standby:
    """Every quarter of `schedule.lease_seconds`: tries to take the scheduler lease while
    another process holds it, and keeps this host's output folder current (`Follower`).

    With two `comms serve` behind a load balancer, one runs the scheduler; when that process
    dies, its lease expires (or is noticed at once on the same host) and the other one starts
    the scheduler, so sends and retries go on without a person. Both follow what any host
    publishes: a `comms send` started on one host shows on the other within a beat.
    """

    def __init__(self, config: Config, store: Store, handle: SchedulerHandle | None = None) -> None:
        self.config, self.store = config, store
        #: The scheduler, when this process runs it (from the start, or since it took over).
        self.handle = handle
        self.follower = Follower(config, store.engine)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._wait, name="comms-standby", daemon=True)

    def start(self) -> Standby:
        """Begin standing by in the background."""
        self._thread.start()
        return self

    def _wait(self) -> None:
        every = self.config.settings.schedule.lease_seconds / 4
        while not self._stop.wait(every):
            with self._lock:
                if self._stop.is_set():
                    return
                if self.handle is not None and self.handle.gave_up():
                    # Another process took the lease (after a database outage longer than
                    # the lease), or the scheduler died: stand by again, so that this
                    # process can take over once more when that one is gone.
                    log.warning("this process no longer runs the scheduler; standing by")
                    self.handle = None
                if self.handle is None:
                    self._take_over()
            self.follower.beat(scheduling=self.handle is not None)

    def _take_over(self) -> None:
        try:
            self.handle = start_scheduler(self.config, self.store)
        except Exception as exc:  # a database hiccup: try again at the next beat
            if not noted("scheduler standby", exc):
                log.exception("scheduler standby: cannot take the lease")
            return
        if self.handle is not None:
            log.info("took over the scheduler (the previous holder's lease had ended)")

    def shutdown(self) -> None:
        """Stop standing by; stop the scheduler if this process took it over."""
        with self._lock:
            self._stop.set()
        if self._thread.ident is not None:  # a SIGTERM may come before it was started
            self._thread.join()
        if self.handle is not None:
            self.handle.shutdown()
