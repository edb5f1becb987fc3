"""Pacing against real SMTP servers that greylist, defer everything or drop connections."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.core.errors import TemporaryFailure
from comms.core.settings import Delivery
from comms.db.tables import deliveries
from comms.mail.replies import asks_to_slow_down, classify, classify_http
from comms.mail.smtp import SmtpTransport
from comms.sending.campaign import prepare, send
from comms.sending.run import SendOptions
from comms.sending.throttle import TokenBucket

from .ledgerkit import build, make_store
from .smtp_servers import Handler, smtp_server

#: The defaults of the `delivery` section: first retry after 300 s.
OPTIONS = SendOptions.of(Delivery())


def opener(port: int, per_connection: int = 100) -> Callable[[], SmtpTransport]:
    return lambda: SmtpTransport(
        "127.0.0.1", port, timeout=5, max_per_connection=per_connection, helo_name="test"
    )


def attempts_by_row(store: object) -> list[int]:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return [row[0] for row in conn.execute(sa.select(deliveries.c.attempts))]


@pytest.mark.parametrize(
    ("code", "reply", "slow"),
    [
        (451, "4.7.1 Greylisted, please try again later", False),
        (450, "4.2.0 Greylisted, see https://postgrey.schweikert.ch/", False),
        (452, "4.2.2 Mailbox full", False),
        (451, "4.3.0 Temporary lookup failure", False),
        (421, "4.7.0 Service not available, closing transmission channel", True),
        (421, "4.7.28 Our system has detected an unusual rate of mail", True),
        (450, "4.7.1 Error: too many connections from 192.0.2.1", True),
        (451, "4.7.1 Rate limit exceeded, slow down", True),
        (452, "4.3.2 Too many messages in this session", True),
        (450, "4.7.0 Throttled: try again later", True),
    ],
)
def test_only_signals_about_the_sender_slow_down(code: int, reply: str, slow: bool) -> None:
    assert asks_to_slow_down(classify(code, reply, "RCPT TO")) is slow


def test_http_429_slows_down_and_a_5xx_does_not() -> None:
    assert asks_to_slow_down(classify_http(429, "rate limit", "a@example.org", 2.0, "api"))
    assert not asks_to_slow_down(classify_http(503, "maintenance", "a@example.org", None, "api"))
    assert not asks_to_slow_down(TemporaryFailure("connection lost"))


@pytest.mark.database
def test_greylisted_recipients_wait_for_their_retry_and_slow_nobody(tmp_path: Path) -> None:
    store = make_store(tmp_path, 40)
    grey = {f"user{n}@example.org" for n in range(0, 40, 10)}
    handler = Handler(greylist=grey)
    campaign, _ = prepare(store, "ausgabe-1", "hash-1", [], [])
    clock = [now_utc()]
    options = replace(OPTIONS, clock=lambda: clock[0])
    with smtp_server(handler) as port:
        report = send(store, campaign, build, opener(port), options)
        # The run did not wait for the greylisted (each was tried once in it); that a greylisting
        # reply slows nobody down is test_only_signals_about_the_sender_slow_down.
        assert report.counts == {"sent": 36, "queued": 4} and report.exit_code == 3
        assert sorted(handler.greylisted) == sorted(grey)
        assert report.next_attempt is not None  # retry_backoff_seconds: 300 s ± 20 %
        assert timedelta(seconds=240) <= report.next_attempt - clock[0] <= timedelta(seconds=360)
        assert send(store, campaign, build, opener(port), options).counts["queued"] == 4
        clock[0] += timedelta(seconds=400)  # greylisting has passed
        report = send(store, campaign, build, opener(port), options)
    assert report.counts == {"sent": 40} and report.exit_code == 0
    assert sorted(attempts_by_row(store)) == [1] * 36 + [2] * 4


@pytest.mark.database
@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelining"])
def test_a_server_that_drops_every_few_messages_costs_no_delivery(
    tmp_path: Path, pipelining: bool
) -> None:
    store = make_store(tmp_path, 60)
    handler = Handler(close_after=7, pipelining=pipelining)
    campaign, _ = prepare(store, "ausgabe-1", "hash-1", [], [])
    with smtp_server(handler) as port:
        report = send(store, campaign, build, opener(port), OPTIONS)
    assert handler.connections >= 60 // 7
    if not pipelining:
        assert report.counts == {"sent": 60} and report.exit_code == 0
        assert sorted(attempts_by_row(store)) == [1] * 60  # reconnected, never deferred
        return
    # aiosmtpd answers the commands already buffered before it hangs up: the first time, a
    # connection's next message, pipelined behind the seventh's ".", gets a 354 and then
    # nothing (ambiguous, never received); from then on it reads that reply at once.
    ambiguous = report.counts.get("ambiguous", 0)
    assert report.counts.get("sent", 0) + ambiguous == 60
    assert ambiguous <= OPTIONS.concurrency
    received = Counter(r.rcpt_tos[0] for r in handler.received)
    assert set(received.values()) == {1} and len(received) == 60 - ambiguous


@pytest.mark.database
@pytest.mark.slow
def test_a_server_deferring_everything_gets_a_steady_low_pace_and_no_retry_storm(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path, 200)
    handler = Handler(mail_reply="421 4.7.0 Too many messages, slow down")
    campaign, _ = prepare(store, "ausgabe-1", "hash-1", [], [])
    halt = threading.Event()
    timer = threading.Timer(4.0, halt.set)
    with smtp_server(handler) as port:
        timer.start()
        report = send(store, campaign, build, opener(port), replace(OPTIONS, stop=halt))
    assert report.interrupted and report.stopped is None
    # A cohort of four 421s drops the pace to the floor of 1 message per second at once.
    assert handler.mail_commands <= 4 + 4 * TokenBucket.FLOOR + 4
    tried = [n for n in attempts_by_row(store) if n]
    assert len(tried) == handler.mail_commands and set(tried) == {1}  # nobody retried in-run
