"""Transactional mail (the double opt-in): in the background for the web, at once for the CLI."""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from comms.core.config import Config
from comms.core.errors import CommsError, DeliveryError, TemporaryFailure
from comms.mail.message import OutgoingMessage
from comms.mail.transports import open_transport

log = logging.getLogger("comms.subscriptions")


class Postbox(Protocol):
    """Where the sign-up service hands its confirmation mails."""

    #: Called with (message, error text) when a message cannot be sent in the end.
    on_failure: Callable[[OutgoingMessage, str], None] | None
    #: Who sends, as the consent ledger names it when a mail fails.
    source: str

    def submit(self, message: OutgoingMessage) -> None:
        """Send one message (now or later)."""


#: Waits (seconds) before the retries of a confirmation mail that failed temporarily.
RETRY_DELAYS = (10.0, 60.0, 300.0, 1800.0)


class Mailer:
    """Sends transactional mail from one background thread, so that a web answer never waits
    for the mail server: known and unknown addresses answer equally fast (docs/requirements.md L15).

    A temporary failure is retried after each of `RETRY_DELAYS`; a message that cannot be sent
    in the end is reported to `on_failure` (which records it), never silently dropped.
    """

    def __init__(
        self,
        config: Config,
        transport_url: str | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.config = config
        self.url = transport_url or config.transport_url
        self.retry_delays = retry_delays
        self.source = "comms serve"
        #: Called with (message, error text) when a message is given up.
        self.on_failure: Callable[[OutgoingMessage, str], None] | None = None
        self._queue: queue.Queue[OutgoingMessage | None] = queue.Queue()
        self._retries: list[tuple[float, int, int, OutgoingMessage]] = []
        self._thread = threading.Thread(target=self._run, name="comms-mailer", daemon=True)
        self._thread.start()
        #: Delivery problems so far (message id, error); the log has them too.
        self.failures: list[tuple[str, str]] = []

    def submit(self, message: OutgoingMessage) -> None:
        """Queue one message."""
        self._queue.put(message)

    def join(self) -> None:
        """Wait until every queued message has been handed to the transport (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Send what is queued, then stop the thread (retries still waiting are reported)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            timeout = None
            if self._retries:
                timeout = max(0.0, self._retries[0][0] - time.monotonic())
            try:
                message = self._queue.get(timeout=timeout)
            except queue.Empty:
                _, _, attempt, retry = heapq.heappop(self._retries)
                self._send(retry, attempt)
                continue
            try:
                if message is None:
                    for _, _, _, waiting in self._retries:
                        self._give_up(waiting, "not sent before shutdown")
                    return
                self._send(message, 0)
            finally:
                self._queue.task_done()

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
                due = time.monotonic() + delay
                heapq.heappush(self._retries, (due, id(message), attempt + 1, message))
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


def _deliver(url: str, config: Config, message: OutgoingMessage) -> None:
    """Hand one message to a fresh transport."""
    transport = open_transport(url, config)
    try:
        transport.send(message.envelope_from, message.recipient, message.data, message.key)
    finally:
        transport.close()
