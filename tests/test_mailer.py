"""The confirmation mailer: temporary failures are retried, final failures are recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from comms.audience.mailer import Mailer
from comms.audience.subscriptions import SignUp, Subscriptions, Visitor
from comms.db.store import open_store

from .smtp_servers import Handler, smtp_server
from .webkit import make_config


def _wait(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _sign_up(tmp_path: Path, port: int, delays: tuple[float, ...]) -> tuple[Subscriptions, Mailer]:
    config = make_config(tmp_path, f"smtp://127.0.0.1:{port}")
    store = open_store(config)
    mailer = Mailer(config, retry_delays=delays)
    subs = Subscriptions(config, store, mailer)
    subs.request(SignUp("anna@example.org", None, (), ()), Visitor("http://127.0.0.1/subscribe"))
    return subs, mailer


@pytest.mark.database
def test_a_temporary_failure_is_retried_until_the_mail_goes_out(tmp_path: Path) -> None:
    handler = Handler(rcpt_replies={"anna@example.org": "451 4.3.0 Try again later"})
    with smtp_server(handler) as port:
        subs, mailer = _sign_up(tmp_path, port, (0.3,))
        _wait(lambda: handler.commands.count("MAIL") >= 1)
        del handler.rcpt_replies["anna@example.org"]
        _wait(lambda: len(handler.received) == 1)
        mailer.close()
        assert mailer.failures == []
        assert b"/confirm/" in handler.received[0].data
        subs.store.close()


@pytest.mark.database
def test_a_mail_that_cannot_be_sent_is_recorded_in_the_ledger(tmp_path: Path) -> None:
    handler = Handler(rcpt_replies={"anna@example.org": "550 5.1.1 No such user"})
    with smtp_server(handler) as port:
        subs, mailer = _sign_up(tmp_path, port, (0.1,))
        _wait(lambda: bool(mailer.failures))
        mailer.close()
    report = subs.store.report("anna@example.org")
    assert report is not None
    actions = [event["action"] for event in report["consent"]]
    assert actions == ["request", "bounce"]
    assert "550" in report["consent"][-1]["note"]
    assert report["status"] == "pending"
    subs.store.close()


def test_deferred_work_waits_survives_errors_and_is_not_lost_at_shutdown(tmp_path: Path) -> None:
    config = make_config(tmp_path, "memory://deferred")
    mailer = Mailer(config, settle=0.2)
    done: list[str] = []

    def fail() -> None:
        raise RuntimeError("boom")

    start = time.monotonic()
    mailer.defer(lambda: done.append("first"))
    mailer.defer(fail)
    mailer.defer(lambda: done.append("after the failure"))
    mailer.join()
    assert done == ["first", "after the failure"]
    assert time.monotonic() - start >= 0.2  # after the answer went out, not during it
    mailer.settle = 60.0
    mailer.defer(lambda: done.append("at shutdown"))
    mailer.close()  # does not wait a minute, does not drop the task
    assert done[-1] == "at shutdown"
