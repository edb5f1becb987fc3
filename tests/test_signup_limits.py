"""Limits that hold against a determined sender (issue 21, finding 5): mails per mailbox
(`+tags`, case and Gmail's dots folded), clients per IPv6 /64, new confirmation mails counted
against the same cap and refused for old links, cross-site form posts refused."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from itsdangerous import TimestampSigner

from comms.audience.limits import MAILS_PER_ADDRESS, client_bucket
from comms.core.addresses import mailbox

from .webkit import Web, h1, open_web, served

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    # No client limit in the way: the mail cap alone must hold.
    with open_web(tmp_path, subscribe={"rate_limit": 1000}) as web:
        yield web


def post(
    port: int, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> int:
    """One form POST over HTTP, as a script sends it; its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, urlencode(fields), {**FORM, **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_one_mailbox_whatever_its_spelling() -> None:
    assert mailbox("victim+1@example.org") == "victim@example.org"
    assert mailbox("Victim+news+x@Example.ORG") == "victim@example.org"
    assert mailbox("M.Muster+a@googlemail.com") == "mmuster@gmail.com"
    assert mailbox("m.mus.ter@gmail.com") == "mmuster@gmail.com"
    # Dots are kept where the provider does not ignore them: two different people.
    assert mailbox("m.muster@example.org") != mailbox("mmuster@example.org")
    assert mailbox("+tag@example.org") == "+tag@example.org"


def test_clients_are_counted_per_ipv6_64() -> None:
    assert client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2:ffff::9")
    assert client_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket("192.0.2.7") == "192.0.2.7" != client_bucket("192.0.2.8")
    assert client_bucket("::ffff:192.0.2.7") == "192.0.2.7"


@pytest.mark.database
def test_plus_tags_do_not_multiply_the_mails(web: Web) -> None:
    # The review: victim+1@ … victim+10@ from one client got 10 confirmation mails.
    with served(web.app) as port:
        for n in range(1, 11):
            assert post(port, "/subscribe", {"email": f"Victim+{n}@example.org"}) == 200
        for spelling in ("v.i.c.t.i.m+1@gmail.com", "victim@googlemail.com", "VICTIM@gmail.com"):
            assert post(port, "/subscribe", {"email": spelling}) == 200
    recipients = [str(mail["To"]).lower() for mail in web.mails()]
    assert len([r for r in recipients if r.endswith("@example.org")]) == MAILS_PER_ADDRESS
    assert len([r for r in recipients if r.endswith("mail.com")]) == MAILS_PER_ADDRESS


@pytest.mark.database
def test_a_64_is_one_client(tmp_path: Path) -> None:
    with open_web(tmp_path, subscribe={"rate_limit": 3}) as web:
        answers = [
            web.client.post(
                "/subscribe",
                data={"email": f"p{n}@example.org"},
                environ_base={"REMOTE_ADDR": f"2001:db8:7:7::{n + 1:x}"},
            ).status_code
            for n in range(4)
        ]
        other = web.client.post(
            "/subscribe",
            data={"email": "q@example.org"},
            environ_base={"REMOTE_ADDR": "2001:db8:7:8::1"},
        )
    assert answers == [200, 200, 200, 429]
    assert other.status_code == 200


@pytest.mark.database
def test_resends_count_against_the_mailbox_cap(web: Web) -> None:
    # The review: six resends gave seven mails.
    web.sign_up("resend@example.org")
    confirm = web.confirm_path()
    with served(web.app) as port:
        for _ in range(6):
            assert post(port, confirm + "/resend", {}) == 200
    assert len(web.mails()) == MAILS_PER_ADDRESS


@pytest.mark.database
def test_resend_refuses_links_past_the_next_confirmation_window(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    web.sign_up("late@example.org")
    person = web.store.find("late@example.org")
    assert person is not None
    days = web.config.settings.subscribe.confirm_days

    def link(age: timedelta) -> str:
        made = int((datetime.now(UTC) - age).timestamp())
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: made)
        url = web.subs.confirm_url(person.uid)
        monkeypatch.undo()
        return url.removeprefix("https://newsletter.example.org")

    too_old = web.client.post(link(timedelta(days=2 * days, hours=1)) + "/resend")
    assert too_old.status_code == 410 and h1(too_old) == "Dieser Link ist zu alt"
    assert len(web.mails()) == 1
    # Expired, but within one confirmation window after: the expired page's button works.
    assert web.client.post(link(timedelta(days=days + 1)) + "/resend").status_code == 200
    assert len(web.mails()) == 2


@pytest.mark.database
def test_cross_site_form_posts_are_refused_and_one_click_still_works(web: Web) -> None:
    person = web.activate("reader@example.org")
    page = f"/preferences/{web.subs.preferences_token(person)}"
    token = web.csrf(page)
    unsubscribe = f"/unsubscribe/{web.subs.unsubscribe_token(person)}"
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    with served(web.app) as port:
        # A valid form token fetched by a server does not help another site's page.
        fields = {"csrf_token": token, "really": "yes"}
        assert post(port, page + "/delete", fields, cross) == 403
        assert post(port, page, {"csrf_token": token}, cross) == 403
        assert (
            post(port, "/subscribe", {"email": "x@example.org", "csrf_token": web.csrf()}, cross)
            == 400
        )
        # RFC 8058: the mailbox provider's one-click POST carries no browser headers.
        assert post(port, unsubscribe, {"List-Unsubscribe": "One-Click"}) == 200
    refused = web.client.post(page, data={"csrf_token": token}, headers=cross)
    assert h1(refused) == "Bitte verwenden Sie das Formular auf unserer Website"
    gone = web.store.find("reader@example.org")
    assert gone is not None and gone.status == "unsubscribed"
    assert web.store.find("x@example.org") is None
