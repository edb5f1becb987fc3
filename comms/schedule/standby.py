"""A web-only `comms serve` stands by for the scheduler and takes it over when its lease frees."""

from __future__ import annotations

import logging
import threading

from comms.core.config import Config
from comms.db.subscribers import Store
from comms.schedule.follow import Follower
from comms.schedule.runner import SchedulerHandle, start_scheduler

log = logging.getLogger("comms.schedule")


class Standby:
    """Tries to take the scheduler lease every quarter of `schedule.lease_seconds`.

    With two `comms serve` behind a load balancer, one runs the scheduler; when that process
    dies, its lease expires (or is noticed at once on the same host) and the other one starts
    the scheduler, so sends and retries go on without a person. Meanwhile it keeps its own
    output folder current (`Follower`); once it runs the scheduler, the refresh job does that.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self.handle: SchedulerHandle | None = None
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
                try:
                    self.handle = start_scheduler(self.config, self.store)
                except Exception:  # a database hiccup: try again at the next beat
                    log.exception("scheduler standby: cannot take the lease")
                    continue
                if self.handle is not None:
                    log.info("took over the scheduler (the previous holder's lease had ended)")
                    return
            self.follower.beat()

    def shutdown(self) -> None:
        """Stop standing by; stop the scheduler if this process took it over."""
        with self._lock:
            self._stop.set()
        if self._thread.ident is not None:  # a SIGTERM may come before it was started
            self._thread.join()
        if self.handle is not None:
            self.handle.shutdown()
