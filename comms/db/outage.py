"""Database outages: which errors mean "the server is away for now", and waiting them out.

A PostgreSQL restart or a network split must not end a send: every database use of a send
run, the scheduler and `comms worker` goes through `Patience`, which retries with a bounded
backoff and logs once per outage (when it begins and when the database answers again), not
once per statement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from comms.core import alarm
from comms.core.errors import CommsError, ConfigError

log = logging.getLogger("comms.database")

T = TypeVar("T")
#: The first wait after a failure (seconds); it doubles up to MAX_BACKOFF.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0
#: How often a wait looks whether the caller was asked to stop (seconds).
STOP_POLL = 0.25
#: SQLSTATE classes of a server that is away: 08 connection exception, 57P operator
#: intervention (admin or crash shutdown, cannot connect now).
_AWAY = ("08", "57P")
#: SQLite's words for a database file it cannot reach right now.
_SQLITE_AWAY = ("database is locked", "unable to open database file")


class DatabaseAway(ConfigError):
    """The database cannot be opened because its server does not answer (for now): a
    command that cannot wait says so as a configuration problem; one that can waits."""


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database is unreachable for now (worth waiting for), not that
    a statement or the data is wrong (disk full, constraint, bug: those are raised)."""
    if isinstance(exc, DatabaseAway):
        return True
    orig: BaseException = exc
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig if isinstance(exc.orig, BaseException) else exc
    name = type(orig).__name__
    module = type(orig).__module__
    if module.startswith("psycopg"):
        # A lost or refused connection carries no SQLSTATE; a shutdown carries class 57P.
        state = getattr(orig, "sqlstate", None)
        if state is None:
            return isinstance(orig, Exception) and _is_operational(orig)
        return str(state).startswith(_AWAY)
    if module == "sqlite3" and name == "OperationalError":
        return any(words in str(orig) for words in _SQLITE_AWAY)
    return False


def _is_operational(exc: Exception) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OperationalError", "InterfaceError"})


class Stopped(CommsError):
    """The caller asked to stop while the database was away: nothing was lost, a later run
    resumes (exit 3, as for a send that leaves work for later)."""

    exit_code = 3

    def __init__(self, what: str) -> None:
        super().__init__(
            f"stopped while waiting for the database ({what}); nothing is lost: run it again "
            "once the database answers"
        )


class _Outages:
    """The process's view of the database: up, or away since when (one log line each way)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.what = ""  # who met the outage first: the alarm's `where`

    def failed(self, what: str, exc: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since, self.what = time.monotonic(), what
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(
            "the database does not answer (%s: %s); waiting for it, trying again every few seconds",
            what,
            first,
        )
        alarm.database_unreachable(what, first)  # the office hears of it (comms.alerts)

    def answered(self) -> None:
        if self.since is None:  # the hot path: no lock while all is well
            return
        with self._lock:
            if self.since is None:
                return
            away, self.since = time.monotonic() - self.since, None
        log.warning("the database answers again (away for %.0f s); going on", away)
        alarm.database_reachable(self.what)


#: One per process: several threads that meet the same outage log it once.
OUTAGES = _Outages()


def noted(what: str, exc: BaseException) -> bool:
    """For callers that retry by themselves (heartbeats): True, and logged once per outage,
    when `exc` is an outage; False for any other error (the caller reports it)."""
    if not is_outage(exc):
        return False
    OUTAGES.failed(what, exc)
    return True


def answered() -> None:
    """For callers that retry by themselves: the database answered (ends a logged outage)."""
    OUTAGES.answered()


class Patience:
    """Runs database calls, waiting out outages with a bounded backoff.

    `stopped` says when to give up waiting (a signal, a stopping run): `call` then raises
    `Stopped`. `limit` bounds one wait in seconds (None: as long as it takes); past it the
    last error is raised. Errors that are no outage are raised at once.
    """

    def __init__(
        self,
        what: str,
        stopped: Callable[[], bool] = lambda: False,
        limit: float | None = None,
    ) -> None:
        self.what, self.stopped, self.limit = what, stopped, limit

    def call(self, func: Callable[[], T], reset: Callable[[], None] | None = None) -> T:
        """`func()`, tried again through an outage; `reset` runs after each failure (drop a
        dead connection so that the next try opens a new one)."""
        delay = FIRST_BACKOFF
        began: float | None = None
        while True:
            try:
                result = func()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if reset is not None:
                    reset()
                now = time.monotonic()
                if began is None:
                    # A connection that died with an earlier outage fails once; its
                    # replacement answers at once, so the first failure is tried again now.
                    began = now
                    continue
                OUTAGES.failed(self.what, exc)
                if self.limit is not None and now - began >= self.limit:
                    raise
                self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            OUTAGES.answered()
            return result

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stopped():
                raise Stopped(self.what)
            time.sleep(min(STOP_POLL, left))
        if self.stopped():
            raise Stopped(self.what)


def patiently(what: str, func: Callable[[], T], stop: threading.Event | None = None) -> T:
    """`func()` through any outage (until `stop` is set: then `Stopped`)."""
    stopped = stop.is_set if stop is not None else (lambda: False)
    return Patience(what, stopped).call(func)
