"""Services the CLI and the scheduler share: one send rule; the sign-up of `subscribers add`."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from comms.audience.mailer import Mailer
from comms.audience.subscriptions import Subscriptions
from comms.content.site import read_site
from comms.core.clock import now_utc
from comms.core.config import load_config
from comms.db.store import open_store
from comms.mail.transports import memory_outbox
from comms.schedule.jobs import scheduled_send
from comms.schedule.plan import plan
from comms.sending.rules import READY
from comms.web.app import create_app

from .ledgerkit import run_cli
from .smtp_servers import Handler, smtp_server

pytestmark = pytest.mark.database

DRAFT = "2020-04-newsletter"
SECRET = "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
CONFIRM_RE = re.compile(r"https://newsletter\.example\.org(/confirm/[A-Za-z0-9_.-]+)")


# -- one rule decides whether an issue may be sent ---------------------------------------


def test_a_draft_is_refused_by_the_cli_and_the_scheduler_for_the_same_reason(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    path = site_copy / "content" / "issues" / f"{DRAFT}.md"
    due = now_utc().replace(microsecond=0) + timedelta(days=1)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("status: draft\n", f"status: draft\nsend_at: {due.isoformat()}\n"))
    config = load_config(site_copy / "comms.toml")
    site, errors = read_site(config)
    reason = READY.reason(site.issues[DRAFT])
    assert reason == f"issue '{DRAFT}' is a draft; set `status: ready` to send it"

    code, _, err = run_cli(site_copy, "send", DRAFT)
    assert (code, err) == (1, f"error: {reason} (proofs with --to work for drafts)\n")

    store = open_store(config)
    try:
        assert DRAFT not in [
            entry.slug for entry in plan(config, site, errors, store.ledger, due).sends
        ]
    finally:
        store.close()
    with caplog.at_level(logging.INFO, logger="comms.scheduler"):
        assert scheduled_send(str(site_copy / "comms.toml"), DRAFT, now_utc().isoformat()) == (
            "skipped"
        )
    assert f"send of {DRAFT} skipped: {reason}" in caplog.text
    assert not (site_copy / "var" / "outbox" / DRAFT).exists()


# -- `comms subscribers add` without --confirmed: the double opt-in mail -----------------


def _mail(data: bytes) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def test_add_sends_the_confirmation_mail_and_its_link_confirms(site_copy: Path) -> None:
    name = "add-" + secrets.token_hex(4)
    env = {"COMMS_TRANSPORT": f"memory://{name}"}
    code, out, err = run_cli(
        site_copy, "subscribers", "add", "Neu@Example.org", "--topic", "sprache", env=env
    )
    assert code == 0, err
    assert out == (
        "added neu@example.org as pending: confirmation mail sent to neu@example.org "
        "(double opt-in); no newsletter until they confirm\n"
    )
    [sent] = memory_outbox(name)
    mail = _mail(sent.data)
    assert (sent.recipient, mail["To"]) == ("neu@example.org", "neu@example.org")
    body = mail.get_body(("plain",))
    assert body is not None
    found = CONFIRM_RE.search(body.get_content())
    assert found, body.get_content()

    config = load_config(site_copy / "comms.toml", environ={"COMMS_SECRET_KEY": SECRET} | env)
    store = open_store(config)
    mailer = Mailer(config)
    try:
        app = create_app(site_copy / "public", config, Subscriptions(config, store, mailer))
        assert app.test_client().post(found.group(1)).status_code == 200
        report = store.report("neu@example.org")
    finally:
        mailer.close()
        store.close()
    assert report is not None
    assert (report["status"], report["topics"]) == ("active", ("sprache",))
    request, confirm = report["consent"]
    assert (request["action"], request["source"], request["channel"]) == (
        "request",
        "comms subscribers add",
        "cli",
    )
    assert confirm["action"] == "confirm"

    # Active now: a second add sends nothing and says why.
    code, _, err = run_cli(site_copy, "subscribers", "add", "neu@example.org", env=env)
    assert (code, err) == (
        1,
        "error: neu@example.org is already a subscriber (active); no confirmation mail sent\n",
    )
    assert len(memory_outbox(name)) == 1


def test_adding_a_pending_person_again_sends_a_new_mail(site_copy: Path) -> None:
    name = "again-" + secrets.token_hex(4)
    env = {"COMMS_TRANSPORT": f"memory://{name}"}
    assert run_cli(site_copy, "subscribers", "add", "wartet@example.org", env=env)[0] == 0
    code, out, _ = run_cli(site_copy, "subscribers", "add", "wartet@example.org", env=env)
    assert (code, out) == (
        0,
        "wartet@example.org was pending already: new confirmation mail sent to "
        "wartet@example.org (double opt-in)\n",
    )
    assert [sent.recipient for sent in memory_outbox(name)] == ["wartet@example.org"] * 2


def test_a_transport_error_is_an_error_and_recorded(site_copy: Path) -> None:
    handler = Handler(rcpt_replies={"anna@example.org": "550 5.1.1 No such user"})
    with smtp_server(handler) as port:
        env = {"COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}"}
        code, out, err = run_cli(site_copy, "subscribers", "add", "anna@example.org", env=env)
    assert (code, out) == (1, "")
    assert err.startswith("error: confirmation mail to anna@example.org not sent: ")
    assert "550" in err
    assert err.endswith(
        "; anna@example.org stays pending: run `comms subscribers add anna@example.org` "
        "again to send a new one\n"
    )
    assert handler.received == []
    code, out, _ = run_cli(site_copy, "subscribers", "show", "anna@example.org", "--json")
    assert code == 0
    assert '"status": "pending"' in out
    assert '"action": "bounce"' in out and '"source": "comms subscribers add"' in out
