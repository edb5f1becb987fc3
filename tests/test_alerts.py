"""Alerts to the office: German mail through the configured transport (aiosmtpd) and a JSON
POST to a real local webhook, each alert once; the campaign checks; the lease and database
alarms."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.extract import extract_from_file
from pytest_httpserver import HTTPServer

from comms.alerts import texts
from comms.alerts.campaign_checks import check_campaigns
from comms.alerts.notify import Alerter
from comms.core import alarm
from comms.core.clock import now_utc
from comms.core.config import load_config
from comms.db.tables import scheduler_lease
from comms.publish.templating import translations
from comms.schedule.runner import SchedulerHandle, start_scheduler

from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, open_site, wait_for, with_subscribers
from .smtp_servers import Handler, free_port, smtp_server

OFFICE = "buero@example.org"


@pytest.fixture
def office(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer
) -> Iterator[tuple[Path, Handler, HTTPServer]]:
    """The sample site alerting OFFICE through aiosmtpd and a webhook on `httpserver`."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    monkeypatch.setenv("COMMS_ALERTS_TO", OFFICE)
    monkeypatch.setenv("COMMS_ALERTS_WEBHOOK", httpserver.url_for("/hook"))
    handler = Handler()
    with smtp_server(handler) as port:
        monkeypatch.setenv("COMMS_TRANSPORT", f"smtp://127.0.0.1:{port}")
        yield site_copy, handler, httpserver


def mails(handler: Handler) -> list[EmailMessage]:
    """The alert mails that reached the office."""
    found = []
    for received in handler.received:
        if received.rcpt_tos == [OFFICE]:
            message = message_from_bytes(received.data, policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def posts(server: HTTPServer) -> list[dict[str, object]]:
    """The JSON bodies the webhook received."""
    return [json.loads(request.get_data()) for request, _ in server.log]


@pytest.mark.database
def test_an_alert_goes_out_once_by_mail_and_webhook(
    office: tuple[Path, Handler, HTTPServer],
) -> None:
    root, handler, server = office
    config, store = open_site(root)
    due = now_utc().replace(microsecond=0)
    alert = texts.send_problem(config, ISSUE, "refused", "nicht freigegeben", due)
    try:
        assert Alerter(config, store.engine).send(alert) is True
        # A second process (or the next retry of the job) finds the key recorded.
        assert Alerter(config, store.engine).send(alert) is False
    finally:
        store.close()
    [mail] = mails(handler)
    assert mail["Subject"] == f"Geplanter Versand von {ISSUE} abgelehnt"
    assert mail["To"] == OFFICE
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Content-Language"] == "de"
    # A message to the office, not to the list: no list headers, no unsubscribe link.
    assert mail["List-Unsubscribe"] is None and mail["List-Id"] is None
    body = mail.get_content()
    assert "wurde abgelehnt; nichts wurde verschickt." in body
    assert "Grund: nicht freigegeben" in body
    [post] = posts(server)
    assert post["kind"] == "send-refused"
    assert post["subject"] == f"Geplanter Versand von {ISSUE} abgelehnt"
    assert post["facts"] == {
        "issue": ISSUE,
        "reason": "nicht freigegeben",
        "due_at": due.isoformat(),
    }


def test_a_database_outage_is_told_once_until_it_ends(
    office: tuple[Path, Handler, HTTPServer],
) -> None:
    root, handler, server = office
    config = load_config(root / "comms.toml")  # no database: it is the one that is down
    alarm.install(Alerter(config, None))
    try:
        for _ in range(3):  # a retry loop calls at every attempt
            alarm.database_unreachable("comms worker h:1:a", "OperationalError: refused")
        assert len(mails(handler)) == 1
        alarm.database_reachable("comms worker h:1:a")
        alarm.database_unreachable("comms worker h:1:a", "OperationalError: refused")
    finally:
        alarm.install(None)
    subjects = [mail["Subject"] for mail in mails(handler)]
    assert subjects == ["Datenbank nicht erreichbar"] * 2
    assert "comms worker h:1:a erreicht die Datenbank seit " in mails(handler)[0].get_content()
    assert [post["kind"] for post in posts(server)] == ["database-unreachable"] * 2


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_the_campaign_checks_tell_a_finished_send_and_a_bounce_rate_once(
    office: tuple[Path, Handler, HTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, handler, server = office
    monkeypatch.setenv("COMMS_ALERTS_MIN_DELIVERIES", "3")
    with_subscribers(root)
    handler.rcpt_replies["carla@example.org"] = "550 5.1.1 no such user"
    code, _, err = run_cli(root, "send", ISSUE, "--now", "--yes")
    assert code == 0, err
    config, store = open_site(root)
    try:
        alerter = Alerter(config, store.engine)
        assert check_campaigns(alerter, now_utc()) == 2
        assert check_campaigns(alerter, now_utc() + timedelta(minutes=5)) == 0
    finally:
        store.close()
    subjects = sorted(mail["Subject"] for mail in mails(handler))
    assert subjects == [f"Versand von {ISSUE} abgeschlossen", f"Zu viele harte Bounces bei {ISSUE}"]
    summary = next(m for m in mails(handler) if "abgeschlossen" in m["Subject"]).get_content()
    assert "2 verschickt, 1 fehlgeschlagen, 0 übersprungen" in summary
    rate = next(m for m in mails(handler) if "Bounces" in m["Subject"]).get_content()
    assert rate.startswith(f"33,33\u00a0% der Zustellungen von {ISSUE} kamen als harte Bounces")
    assert sorted(str(post["kind"]) for post in posts(server)) == ["bounce-rate", "send-finished"]


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_a_campaign_that_does_not_move_is_told_as_stalled_once(
    office: tuple[Path, Handler, HTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, handler, _ = office
    with_subscribers(root)
    # Nobody listens there: the run stops with every delivery due again at once.
    code, _, _ = run_cli(
        root, "send", ISSUE, "--now", "--yes", "--transport", f"smtp://127.0.0.1:{free_port()}"
    )
    assert code == 1
    config, store = open_site(root)
    try:
        alerter = Alerter(config, store.engine)
        # schedule.stall_minutes (15 by default), the threshold /healthz uses too.
        stall = config.settings.schedule.stall_minutes
        assert check_campaigns(alerter, now_utc() + timedelta(minutes=stall - 1)) == 0
        assert check_campaigns(alerter, now_utc() + timedelta(minutes=stall + 1)) == 1
        assert check_campaigns(alerter, now_utc() + timedelta(minutes=stall + 15)) == 0
    finally:
        store.close()
    [mail] = mails(handler)
    assert mail["Subject"] == f"Versand von {ISSUE} stockt"
    assert "3 Zustellungen sind fällig" in mail.get_content()


@pytest.mark.database
@pytest.mark.slow
def test_a_lost_scheduler_lease_is_told(
    office: tuple[Path, Handler, HTTPServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, handler, server = office
    monkeypatch.setenv("COMMS_SCHEDULE_LEASE_SECONDS", "10")  # a heartbeat every 2.5 s
    config, store = open_site(root)
    handle: SchedulerHandle | None = start_scheduler(config, store)
    assert handle is not None
    try:
        with store.engine.begin() as conn:  # as if another process had taken it over
            conn.execute(sa.update(scheduler_lease).values(owner="elsewhere:1:abcd"))
        wait_for(lambda: len(mails(handler)) == 1, timeout=15)
    finally:
        handle.shutdown()
        store.close()
    [mail] = mails(handler)
    assert mail["Subject"] == "Scheduler-Lease verloren"
    assert [post["kind"] for post in posts(server)] == ["lease-lost"]


def test_every_alert_text_has_a_german_translation() -> None:
    source = Path(texts.__file__)
    extracted = extract_from_file("python", str(source), keywords={"_say": (2,)})
    found = {m[1] for m in extracted if isinstance(m[1], str)}
    assert len(found) > 10
    german = translations("de", texts.DOMAIN)
    assert [m for m in sorted(found) if german.gettext(m) == m] == []
