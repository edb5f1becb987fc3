"""The seam through which code below the alerts raises an alarm: the database's retry loops.

Whoever waits out a database outage calls `database_unreachable(where, error)` when it starts
waiting and `database_reachable(where)` when the database answers again. A process that alerts
(`comms serve`, `comms worker`) installs a sink with `install`; without one both do nothing.
The sink decides how often an outage is told (once per outage and process: the database that
would remember it is the one that is down).
"""

from __future__ import annotations

import threading
from typing import Protocol


class AlarmSink(Protocol):
    """What receives database alarms (comms.alerts.notify.Alerter)."""

    def database_unreachable(self, where: str, error: str) -> None:
        """A process cannot reach the database."""

    def database_reachable(self, where: str) -> None:
        """The database answers again."""


_lock = threading.Lock()
_sink: AlarmSink | None = None


def install(sink: AlarmSink | None) -> None:
    """Set (or with None remove) this process's alarm sink."""
    global _sink
    with _lock:
        _sink = sink


def database_unreachable(where: str, error: str) -> None:
    """Say that `where` (e.g. "comms serve: scheduler lease") cannot reach the database; safe
    to call at every retry: the sink tells each outage once. Never raises."""
    sink = _sink
    if sink is not None:
        try:
            sink.database_unreachable(where, error)
        except Exception:  # an alarm must never break the retry loop that raised it
            pass


def database_reachable(where: str) -> None:
    """Say that the database answers `where` again (the next outage is told again)."""
    sink = _sink
    if sink is not None:
        try:
            sink.database_reachable(where)
        except Exception:
            pass
