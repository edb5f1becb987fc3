"""Transactional mail (the double opt-in): in the background for the web, at once for the CLI."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from comms.core.config import Config
from comms.core.errors import CommsError, DeliveryError, TemporaryFailure
from comms.mail.message import OutgoingMessage
from comms.mail.transports import open_transport

log = logging.getLogger("comms.subscriptions")


class Postbox(Protocol):
    """Where the sign-up service hands its confirmation mails and deferred work."""

    #: Called with (message, error text) when a message cannot be sent in the end.
    on_failure: Callable[[OutgoingMessage, str], None] | None
    #: Who sends, as the consent ledger names it when a mail fails.
    source: str

    def submit(self, message: OutgoingMessage) -> None:
        """Send one message (now or later)."""

    def defer(self, task: Callable[[], None], delay: float | None = None) -> None:
        """Run `task` after the answer to the current request has gone out (or now); `delay`
        seconds from now, if given."""


#: Waits (seconds) before the retries of a confirmation mail that failed temporarily.
RETRY_DELAYS = (10.0, 60.0, 300.0, 1800.0)
#: Deferred work waits this long (seconds), so that it never competes with the answer of the
#: request that queued it: that answer must take the same time whatever the work is.
SETTLE = 0.2


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    run: Callable[[], None] = field(compare=False)
    #: What happens to it when the mailer shuts down first.
    at_shutdown: Callable[[], None] = field(compare=False)


class Mailer:
    """Sends transactional mail and runs deferred sign-ups from one background thread, so that
    a web answer never waits for them: known and unknown addresses answer equally fast
    (docs/requirements.md L15).

    A temporary failure is retried after each of `RETRY_DELAYS`; a message that cannot be sent
    in the end is reported to `on_failure` (which records it), never silently dropped.
    """

    def __init__(
        self,
        config: Config,
        transport_url: str | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        settle: float = SETTLE,
    ) -> None:
        self.config = config
        self.url = transport_url or config.transport_url
        self.retry_delays = retry_delays
        self.settle = settle
        self.source = "comms serve"
        #: Called with (message, error text) when a message is given up.
        self.on_failure: Callable[[OutgoingMessage, str], None] | None = None
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._later: list[_Due] = []
        self._seq = itertools.count()
        # Deferred tasks not yet finished, for `join`.
        self._deferred = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="comms-mailer", daemon=True)
        self._thread.start()
        #: Delivery problems so far (message id, error); the log has them too.
        self.failures: list[tuple[str, str]] = []

    def submit(self, message: OutgoingMessage) -> None:
        """Queue one message."""
        self._queue.put(lambda: self._send(message, 0))

    def defer(self, task: Callable[[], None], delay: float | None = None) -> None:
        """Run `task` in the mailer's thread `settle` (or `delay`) seconds from now."""
        due = time.monotonic() + (self.settle if delay is None else delay)

        def run() -> None:
            try:
                task()
            finally:
                with self._idle:
                    self._deferred -= 1
                    self._idle.notify_all()

        with self._idle:
            self._deferred += 1
        self._queue.put(lambda: self._schedule(due, run, run))

    def join(self) -> None:
        """Wait until every deferred task and queued message is done (tests, shutdown);
        retries waiting for their time are not waited for."""
        with self._idle:
            self._idle.wait_for(lambda: self._deferred == 0)
        self._queue.join()

    def close(self) -> None:
        """Run deferred work and send what is queued, then stop the thread (retries still
        waiting are reported)."""
        self._queue.put(None)
        self._thread.join()

    def _schedule(
        self, at: float, run: Callable[[], None], at_shutdown: Callable[[], None]
    ) -> None:
        heapq.heappush(self._later, _Due(at, next(self._seq), run, at_shutdown))

    def _run(self) -> None:
        while True:
            timeout = None
            if self._later:
                timeout = max(0.0, self._later[0].at - time.monotonic())
            try:
                task = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._guarded(heapq.heappop(self._later).run)
                continue
            try:
                if task is None:
                    while self._later:
                        self._guarded(heapq.heappop(self._later).at_shutdown)
                    return
                self._guarded(task)
            finally:
                self._queue.task_done()

    @staticmethod
    def _guarded(task: Callable[[], None]) -> None:
        try:
            task()
        except Exception:  # one failing task must never kill the mail thread
            log.exception("background task failed")

    def _send(self, message: OutgoingMessage, attempt: int) -> None:
        try:
            _deliver(self.url, self.config, message)
        except TemporaryFailure as exc:
            if attempt < len(self.retry_delays):
                delay = max(self.retry_delays[attempt], exc.retry_after or 0.0)
                log.warning(
                    "confirmation mail %s not sent (%s); retry in %.0f s",
                    message.message_id,
                    exc,
                    delay,
                )
                self._schedule(
                    time.monotonic() + delay,
                    lambda: self._send(message, attempt + 1),
                    lambda: self._give_up(message, "not sent before shutdown"),
                )
                return
            self._give_up(message, str(exc))
        except (DeliveryError, CommsError, OSError) as exc:
            self._give_up(message, str(exc))

    def _give_up(self, message: OutgoingMessage, error: str) -> None:
        self.failures.append((message.message_id, error))
        log.error("confirmation mail %s not sent: %s", message.message_id, error)
        if self.on_failure is not None:
            try:
                self.on_failure(message, error)
            except Exception:  # recording must never kill the mail thread
                log.exception("could not record the failed mail %s", message.message_id)


class MailNotSent(CommsError):
    """A confirmation mail sent at once could not be sent."""


class DirectMailer:
    """Sends each message at once in the caller's thread: the CLI says what happened.

    A failure is recorded through `on_failure`, then raised as MailNotSent; nothing is retried.
    """

    def __init__(self, config: Config, source: str, transport_url: str | None = None) -> None:
        self.config = config
        self.url = transport_url or config.transport_url
        self.source = source
        self.on_failure: Callable[[OutgoingMessage, str], None] | None = None

    def submit(self, message: OutgoingMessage) -> None:
        """Send `message` now; MailNotSent when the transport refuses it or is unreachable."""
        try:
            _deliver(self.url, self.config, message)
        except (DeliveryError, CommsError, OSError) as exc:
            if self.on_failure is not None:
                self.on_failure(message, str(exc))
            raise MailNotSent(f"confirmation mail to {message.recipient} not sent: {exc}") from None

    def defer(self, task: Callable[[], None], delay: float | None = None) -> None:
        """Run `task` now, whatever `delay`: the command line waits for its result anyway."""
        task()


def _deliver(url: str, config: Config, message: OutgoingMessage) -> None:
    """Hand one message to a fresh transport."""
    transport = open_transport(url, config)
    try:
        transport.send(message.envelope_from, message.recipient, message.data, message.key)
    finally:
        transport.close()
