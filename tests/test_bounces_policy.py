"""Bounce policy on a Maildir and over HTTP: suppress, count, complain, refuse forgeries."""

from __future__ import annotations

import base64
import email
import hashlib
import json
import mailbox
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from comms.audience.mailer import Mailer
from comms.audience.subscriptions import Subscriptions
from comms.bounces.webhooks import BrevoWebhook
from comms.core.clock import now_utc
from comms.core.config import Config, load_config
from comms.db.people import NewSubscriber
from comms.db.store import Store, open_store
from comms.db.tables import deliveries, subscribers
from comms.mail.verp import verp_address
from comms.web.app import create_app

from .ledgerkit import IMPORT, run_cli
from .test_send import import_people

CORPUS = Path(__file__).resolve().parent / "bounces"
ISSUE = "2020-02-newsletter"
PLACEHOLDER = b"bounces+VERP@example.org"
SECRET = "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"


def delivery_ids(store: Store) -> dict[str, int]:
    """address → delivery id of the test campaign."""
    query = sa.select(subscribers.c.email, deliveries.c.id).join(
        subscribers, subscribers.c.id == deliveries.c.subscriber_id
    )
    with store.engine.connect() as conn:
        return {email: did for email, did in conn.execute(query)}


def sample(name: str, delivery_id: int, secret: str = SECRET, message_id: str = "") -> bytes:
    """A corpus sample addressed to the VERP address of one delivery."""
    data = (CORPUS / name).read_bytes()
    address = verp_address(secret, delivery_id, "bounces", "example.org").encode()
    data = data.replace(PLACEHOLDER, address)
    if message_id:  # a second report of the same kind is a different message
        data = b"Message-ID: <" + message_id.encode() + b">\n" + data
    return data


def configure(root: Path, toml: str = "", **overrides: Any) -> Config:
    """comms.toml with `toml` and a mailbox in `root/mail`; the CLI's secret key."""
    (root / "comms.toml").write_text(f'[bounces]\nmailbox = "maildir://mail"\n{toml}')
    environ = {"COMMS_SECRET_KEY": SECRET}
    return load_config(root / "comms.toml", overrides=overrides, environ=environ)


@pytest.fixture
def campaign(tmp_path: Path) -> dict[str, int]:
    """Three active subscribers and a started campaign; returns their delivery ids."""
    store = open_store(configure(tmp_path))
    people = ((n, NewSubscriber(f"user{n}@example.org")) for n in range(3))
    store.import_subscribers(people, IMPORT, confirmed=True)
    store.ledger.start(ISSUE, "hash", (), (), now_utc())
    ids = delivery_ids(store)
    store.close()
    return ids


def maildir(root: Path, *messages: bytes) -> mailbox.Maildir:
    box = mailbox.Maildir(root / "mail", create=True)
    for data in messages:
        box.add(data)
    return box


def show(root: Path, address: str) -> dict[str, Any]:
    code, out, err = run_cli(root, "subscribers", "show", address, "--json")
    assert code == 0, err
    person: dict[str, Any] = json.loads(out)
    return person


@pytest.mark.database
def test_maildir_fetch_suppresses_hard_bounces_and_complaints_only(
    tmp_path: Path, campaign: dict[str, int]
) -> None:
    box = maildir(
        tmp_path,
        sample("postfix-hard.eml", campaign["user0@example.org"]),
        sample("gmx-soft-mailbox-full.eml", campaign["user1@example.org"]),
        sample("arf-abuse.eml", campaign["user2@example.org"]),
        sample("autoreply-out-of-office.eml", campaign["user1@example.org"]),
        sample("gmail-delayed.eml", campaign["user1@example.org"]),
        (CORPUS / "not-a-bounce.eml").read_bytes(),
    )
    code, out, err = run_cli(tmp_path, "bounces", "fetch")
    assert code == 0, err
    assert out.startswith(f"maildir://{tmp_path / 'mail'}: 6 message(s) read: ")
    assert "1 autoreply" in out and "1 delayed" in out and "2 suppressed" in out
    assert "1 counted" in out and "1 other" in out

    bounced = show(tmp_path, "user0@example.org")
    assert bounced["status"] == "bounced" and bounced["suppressed"] == "bounced"
    event = bounced["consent"][-1]
    assert (event["action"], event["channel"], event["source"]) == (
        "bounce",
        "dsn",
        "comms bounces fetch",
    )
    assert event["note"].startswith("hard bounce 5.1.1: ") and f"(issue {ISSUE})" in event["note"]
    assert [(b["kind"], b["status"], b["issue"]) for b in bounced["bounces"]] == [
        ("hard", "5.1.1", ISSUE)
    ]
    code, out, _ = run_cli(tmp_path, "subscribers", "show", "user0@example.org")
    assert "bounces and complaints (1):" in out and f"hard 5.1.1 via dsn ({ISSUE})" in out
    # The GDPR export (through the link mailed from the settings page) carries the same record.
    config = configure(tmp_path)
    store, mailer = open_store(config), Mailer(config)
    try:
        subs = Subscriptions(config, store, mailer)
        person = store.find("user0@example.org")
        assert person is not None
        exported = subs.report(person)
        assert exported is not None and exported["bounces"][0]["status"] == "5.1.1"
    finally:
        mailer.close()
        store.close()
    soft = show(tmp_path, "user1@example.org")
    assert soft["status"] == "active"  # one soft bounce counts, an auto-reply is nothing
    assert [(b["kind"], b["status"]) for b in soft["bounces"]] == [("soft", "5.2.2")]
    complained = show(tmp_path, "user2@example.org")
    assert complained["status"] == "complained" and complained["suppressed"] == "complained"
    assert (complained["consent"][-1]["action"], complained["consent"][-1]["channel"]) == (
        "complaint",
        "complaint",
    )

    # Everything read moved to the processed folder; a second fetch has nothing to do.
    assert len(box) == 0 and len(box.get_folder("Processed")) == 6
    code, out, _ = run_cli(tmp_path, "bounces", "fetch")
    assert (code, out) == (0, f"maildir://{tmp_path / 'mail'}: 0 message(s) read\n")

    code, out, _ = run_cli(tmp_path, "status", ISSUE, "--json")
    assert json.loads(out)["bounces"] == {"hard": 1, "soft": 1, "complaint": 1}
    code, out, _ = run_cli(tmp_path, "status", ISSUE)
    assert "bounces: 1 hard, 1 soft; complaints: 1" in out


@pytest.mark.database
def test_soft_bounces_suppress_at_the_limit_and_a_reread_counts_once(
    tmp_path: Path, campaign: dict[str, int]
) -> None:
    configure(tmp_path, "soft_limit = 2\nsoft_days = 30\n")
    did = campaign["user1@example.org"]
    first = sample("postfix-soft-mailbox-full.eml", did, message_id="soft-1@example.net")
    maildir(tmp_path, first, first)  # the same report twice (delivered twice)
    assert run_cli(tmp_path, "bounces", "fetch")[0] == 0
    assert show(tmp_path, "user1@example.org")["status"] == "active"
    assert len(show(tmp_path, "user1@example.org")["bounces"]) == 1
    maildir(tmp_path, sample("t-online-soft.eml", did, message_id="soft-2@example.net"))
    assert run_cli(tmp_path, "bounces", "fetch")[0] == 0
    person = show(tmp_path, "user1@example.org")
    assert person["status"] == "bounced"
    assert person["consent"][-1]["note"].startswith("soft bounce 4.0.0: 554 IP=192.0.2.137")


@pytest.mark.database
def test_forged_and_unknown_bounces_change_nothing_and_are_logged(
    tmp_path: Path, campaign: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    maildir(
        tmp_path,
        sample("postfix-hard.eml", campaign["user0@example.org"], secret="not our secret"),
        sample("exim-hard.eml", 999_999),  # a signature that is right, for no delivery of ours
        (CORPUS / "gmx-hard.eml").read_bytes(),  # no VERP at all and no Message-ID we know
    )
    code, out, err = run_cli(tmp_path, "bounces", "fetch")
    assert code == 0, err
    assert "1 forged" in out and "2 unknown" in out
    logged = caplog.text
    assert "forged bounce" in logged and "unknown delivery 999999" in logged
    assert "names no delivery of ours" in logged
    for n in range(3):
        person = show(tmp_path, f"user{n}@example.org")
        assert (person["status"], person["bounces"]) == ("active", [])


@pytest.mark.database
def test_a_relay_that_rewrote_the_envelope_is_matched_by_message_id(
    tmp_path: Path, campaign: dict[str, int]
) -> None:
    store = open_store(configure(tmp_path))
    mid = "<2025-08-newsletter.0123456789abcdef01234567@newsletter.example.org>"
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == campaign["user2@example.org"])
            .values(message_id=mid)
        )
    store.close()
    data = (CORPUS / "t-online-soft.eml").read_bytes().replace(PLACEHOLDER, b"news@example.org")
    data = data.replace(b"Status: 4.0.0", b"Status: 5.1.1")
    # The same report about another address than the one the Message-ID went to: nothing.
    maildir(tmp_path, data)
    assert run_cli(tmp_path, "bounces", "fetch")[1].endswith("1 unknown\n")
    assert show(tmp_path, "user2@example.org")["status"] == "active"
    # About the address it went to (and the Final-Recipient alone is enough): bounced.
    data = data.replace(b"Original-Recipient: rfc822;nobody.example@t-online.de\n", b"")
    data = data.replace(b"nobody.example@t-online.de", b"User2@Example.org")
    maildir(tmp_path, b"Message-ID: <again@example.net>\n" + data)
    assert run_cli(tmp_path, "bounces", "fetch")[0] == 0
    assert show(tmp_path, "user2@example.org")["status"] == "bounced"


@pytest.mark.database
def test_a_message_id_of_the_old_unkeyed_form_is_not_trusted(
    tmp_path: Path, campaign: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """A ledger from before keyed Message-IDs holds ids anyone can compute from a link's uid."""
    store = open_store(configure(tmp_path))
    person = store.find("user1@example.org")
    assert person is not None
    digest = hashlib.blake2b(f"{ISSUE}/{person.uid}".encode(), digest_size=12).hexdigest()
    mid = f"<{ISSUE}.{digest}@newsletter.example.org>"
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == campaign["user1@example.org"])
            .values(message_id=mid)
        )
    store.close()
    maildir(tmp_path, forged_dsn(mid, "user1@example.org"))
    assert run_cli(tmp_path, "bounces", "fetch")[0] == 0
    assert "from before they were keyed" in caplog.text
    assert show(tmp_path, "user1@example.org")["status"] == "active"


def forged_dsn(message_id: str, recipient: str, status: bytes = b"5.1.1") -> bytes:
    """Postfix's DSN, to the plain bounce address (no VERP), about `recipient`, quoting
    `message_id` as the returned message's: what anyone can mail to the bounce address."""
    data = (CORPUS / "postfix-hard.eml").read_bytes()
    data = data.replace(PLACEHOLDER, b"bounces@example.org").replace(b"Status: 5.1.1", status)
    data = data.replace(b"kijitora@example.org", recipient.encode())
    data = data.replace(b"r@p351355.pool.example.ne.jp", recipient.encode())
    returned = b"Content-Type: message/rfc822\n\n"
    assert returned in data
    head = b"Message-ID: " + message_id.encode() + b"\nFrom: newsletter@example.org\n"
    report_id = b"Message-ID: <" + hashlib.sha256(message_id.encode()).hexdigest().encode()
    data = data.replace(b"Message-Id: <20130429234532.00000000000@", report_id)
    return data.replace(returned, returned + head)


def forged_arf(message_id: str, recipient: str | None) -> bytes:
    """The ARF sample without VERP, quoting `message_id`; naming `recipient` when given."""
    data = (CORPUS / "arf-abuse.eml").read_bytes().replace(PLACEHOLDER, b"news@example.org")
    data = data.replace(b"Subject: Kijitora cat family", b"Message-ID: " + message_id.encode())
    if recipient:
        rcpt = b"Original-Rcpt-To: " + recipient.encode() + b"\n"
        data = data.replace(b"Source-IP: 192.0.2.89\n", b"Source-IP: 192.0.2.89\n" + rcpt)
    report_id = hashlib.sha256(message_id.encode() + (recipient or "").encode()).hexdigest()
    return data.replace(b"000000000000000.000000000000@", report_id.encode() + b"@")


@pytest.mark.slow
@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_forged_reports_without_verp_change_nothing_genuine_ones_act(
    site_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21.3: anyone holding a link could forge a DSN to the plain bounce address."""
    import_people(site_copy, "people.csv", "email\nanna@example.org\nbernd@example.org\n")
    import_people(site_copy, "more.csv", "email\ncarla@example.org\ndora@example.org\n")
    code, out, err = run_cli(site_copy, "send", "2019-11-newsletter")
    assert code == 0, out + err
    sent = {}  # address → the Message-ID of the mail it got, as the outbox holds it
    for eml in (site_copy / "var" / "outbox").rglob("*.eml"):
        message = email.message_from_bytes(eml.read_bytes())
        sent[str(message["To"])] = str(message["Message-ID"])
    assert len(sent) == 4
    people = {address: show(site_copy, address) for address in sent}

    # The Message-ID as it was computed before (an unkeyed hash of slug and the link's uid).
    store = open_store(load_config(site_copy / "comms.toml", environ={"COMMS_SECRET_KEY": SECRET}))
    anna = store.find("anna@example.org")
    store.close()
    assert anna is not None
    digest = hashlib.blake2b(f"2019-11-newsletter/{anna.uid}".encode(), digest_size=12)
    old_way = f"<2019-11-newsletter.{digest.hexdigest()}@newsletter.example.org>"
    assert old_way != sent["anna@example.org"] and anna.uid not in sent["anna@example.org"]
    box = site_copy / "mail"
    (site_copy / "comms.toml").open("a").write('\n[bounces]\nmailbox = "maildir://mail"\n')
    maildir(
        site_copy,
        forged_dsn(old_way, "anna@example.org"),
        forged_arf(old_way, None),
        # A real Message-ID, but Bernd's, in reports about Anna.
        forged_dsn(sent["bernd@example.org"], "anna@example.org"),
        forged_arf(sent["bernd@example.org"], "anna@example.org"),
    )
    code, out, err = run_cli(site_copy, "bounces", "fetch")
    assert code == 0, err
    assert out == f"maildir://{box}: 4 message(s) read: 4 unknown\n"
    assert "names another recipient" in caplog.text
    for address, before in people.items():
        assert show(site_copy, address) == before  # no status, consent or bounce changed

    # Genuine reports without VERP: a relay's DSN about the address the Message-ID went to,
    # and a feedback loop's complaint, which names no recipient.
    maildir(
        site_copy,
        forged_dsn(sent["carla@example.org"], "carla@example.org"),
        forged_arf(sent["dora@example.org"], None),
    )
    code, out, err = run_cli(site_copy, "bounces", "fetch")
    assert out == f"maildir://{box}: 2 message(s) read: 2 suppressed\n", err
    assert show(site_copy, "carla@example.org")["status"] == "bounced"
    assert show(site_copy, "dora@example.org")["status"] == "complained"
    for address in ("anna@example.org", "bernd@example.org"):
        assert show(site_copy, address) == people[address]


@pytest.mark.database
def test_mailbox_errors_exit_1(tmp_path: Path, campaign: dict[str, int]) -> None:
    code, _, err = run_cli(tmp_path, "bounces", "fetch", "--mailbox", "maildir://nowhere")
    assert code == 1 and "not a readable Maildir" in err
    code, _, err = run_cli(tmp_path, "bounces", "fetch", "--mailbox", "pop3://host/INBOX")
    assert code == 1 and "must be imaps://" in err
    code, _, err = run_cli(tmp_path, "bounces", "fetch", "--mailbox", "imaps://u:pw@host/INBOX")
    assert code == 1 and "COMMS_BOUNCES_PASSWORD" in err


def test_the_webhook_secret_and_the_imap_password_come_only_from_the_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "comms.toml").write_text('[bounces]\nwebhook_secret = "x"\npassword = "y"\n')
    code, _, err = run_cli(tmp_path, "check")
    assert code == 1
    assert "'bounces.webhook_secret': secrets come only from the environment" in err
    assert "'bounces.password': secrets come only from the environment" in err


# -- provider webhooks over HTTP -------------------------------------------------------------


#: As strong as the secret key must be (config load refuses weaker ones).
HOOK_SECRET = "hook-Vd9Kq2Lp7Wx4Nb8Ys1Tf6Hd3Jm5Gc0Zu-0123456789abcdef"


@pytest.fixture
def webhook(tmp_path: Path, campaign: dict[str, int]) -> Iterator[str]:
    """`comms serve`'s app over HTTP on a real port, with a webhook secret; yields its URL."""
    config = configure(tmp_path, bounces={"webhook_secret": HOOK_SECRET})
    store = open_store(config)
    app = create_app(tmp_path / "public", config, None, BrevoWebhook(config, store))
    # Werkzeug's server, as waitress cannot be stopped safely from another thread (closing its
    # sockets under its select loop raised EBADF in that thread now and then).
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/brevo"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        store.close()


def event(kind: str, email: str, ts: int = 1700000000) -> dict[str, Any]:
    return {
        "event": kind,
        "email": email,
        "id": 4711,
        "date": "2025-08-12 11:12:53",
        "message-id": "<202508121112.12345678@smtp-relay.mailin.fr>",
        "ts_event": ts,
        "reason": "550 5.1.1 user unknown" if "bounce" in kind else None,
    }


BEARER = {"Authorization": f"Bearer {HOOK_SECRET}"}


@pytest.mark.database
def test_webhooks_need_the_secret(webhook: str, tmp_path: Path) -> None:
    body = event("hard_bounce", "user0@example.org")
    assert requests.post(webhook, json=body, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.post(webhook, json=body, headers=wrong, timeout=10).status_code == 401
    assert show(tmp_path, "user0@example.org")["status"] == "active"


@pytest.mark.database
def test_webhook_events_follow_the_policy_once_each(webhook: str, tmp_path: Path) -> None:
    hard = event("hard_bounce", "user0@example.org")
    answer = requests.post(webhook, json=hard, headers=BEARER, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"outcomes": ["suppressed"]}
    again = requests.post(webhook, json=hard, headers=BEARER, timeout=10)
    assert again.json() == {"outcomes": ["duplicate"]}
    person = show(tmp_path, "user0@example.org")
    assert person["status"] == "bounced"
    assert (person["consent"][-1]["channel"], person["consent"][-1]["source"]) == (
        "webhook",
        "webhook brevo",
    )
    assert person["bounces"][0]["issue"] == ISSUE  # the person's latest delivery

    # Batched events, HTTP Basic credentials (the secret as password), other kinds.
    basic = base64.b64encode(f"brevo:{HOOK_SECRET}".encode()).decode()
    batch = [
        event("spam", "user1@example.org"),
        event("unsubscribed", "user2@example.org"),
        event("delivered", "user2@example.org"),
        event("soft_bounce", "nobody@example.org"),
    ]
    answer = requests.post(
        webhook, json=batch, headers={"Authorization": f"Basic {basic}"}, timeout=10
    )
    assert answer.json() == {"outcomes": ["suppressed", "suppressed", "ignored", "unknown"]}
    assert show(tmp_path, "user1@example.org")["status"] == "complained"
    assert show(tmp_path, "user2@example.org")["status"] == "unsubscribed"
    bad = requests.post(webhook, data=b"{", headers=BEARER, timeout=10)
    assert bad.status_code == 400


@pytest.mark.database
def test_without_a_secret_the_webhook_does_not_exist(tmp_path: Path) -> None:
    config = configure(tmp_path)
    store = open_store(config)
    try:
        app = create_app(tmp_path / "public", config, None, BrevoWebhook(config, store))
        answer = app.test_client().post("/webhooks/brevo", json=event("spam", "a@example.org"))
        assert answer.status_code == 404
    finally:
        store.close()


def test_the_scheduler_reads_the_mailbox_only_when_one_is_configured(tmp_path: Path) -> None:
    from comms.schedule.runner import BOUNCES, fixed_jobs

    with_box = configure(tmp_path, "fetch_minutes = 7\n")
    jobs = {job.id: job for job in fixed_jobs(with_box, now_utc())}
    assert jobs[BOUNCES].label == "read the bounce mailbox (every 7 min)"
    (tmp_path / "comms.toml").write_text("")
    without = load_config(tmp_path / "comms.toml", environ={})
    assert BOUNCES not in {job.id for job in fixed_jobs(without, now_utc())}
