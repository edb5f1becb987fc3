"""Links by purpose (issue 14): a forwarded newsletter hands out no data, export and erasure
go through a mailed short-lived single-use link, "log out all links" revokes every link but
the one-click unsubscribe, and links in mails already sent keep working for what they were for."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from comms.mail.tokens import make_token, read_link

from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, open_site, outbox, with_subscribers
from .webkit import PREFS_RE, Web, h1, open_web

pytestmark = pytest.mark.database

ADDRESS = "erika.muster@example.org"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path) as kit:
        yield kit


def test_a_forwarded_newsletter_hands_out_no_data(web: Web) -> None:
    """Finding 1: whoever holds the links of a newsletter cannot download or erase the data."""
    person = web.activate(ADDRESS)
    mails_before = len(web.mails())
    unsubscribe = f"/unsubscribe/{web.subs.unsubscribe_token(person)}"
    page = web.client.get(unsubscribe).get_data(as_text=True)
    assert "/preferences/" not in page and ADDRESS not in page
    prefs = f"/preferences/{web.subs.preferences_token(person)}"
    csrf = web.csrf(prefs)
    export = web.client.post(prefs + "/export", data={"csrf_token": csrf})
    assert export.mimetype == "text/html"
    assert "consent_version" not in export.get_data(as_text=True)
    erase = web.client.post(prefs + "/delete", data={"csrf_token": csrf, "really": "yes"})
    assert erase.mimetype == "text/html"
    assert web.store.find(ADDRESS) is not None  # nothing erased
    # The links went to the owner's address, nowhere else.
    mailed = web.mails()[mails_before:]
    assert [m["To"] for m in mailed] == [ADDRESS, ADDRESS]
    assert [m["Subject"] for m in mailed] == [
        "Ihre Daten aus dem Newsletter",
        "Löschen Ihrer Newsletter-Daten",
    ]


def test_the_confirmation_page_gives_no_permanent_link(web: Web) -> None:
    """Finding 1: a 7-day confirmation link does not turn into a permanent settings link."""
    web.sign_up(ADDRESS)
    path = web.confirm_path()
    for response in (web.client.post(path), web.client.get(path), web.client.post(path)):
        assert response.status_code == 200
        assert "/preferences/" not in response.get_data(as_text=True)


def test_mailed_links_are_single_use_short_lived_and_limited(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = web.activate(ADDRESS)
    prefs = f"/preferences/{web.subs.preferences_token(person)}"
    csrf = web.csrf(prefs)
    web.client.post(prefs + "/export", data={"csrf_token": csrf})
    first = web.data_link()
    web.client.post(prefs + "/export", data={"csrf_token": csrf})
    second = web.data_link()
    assert first != second
    used = web.client.post(first)
    assert used.mimetype == "application/json"
    assert json.loads(used.get_data(as_text=True))["email"] == ADDRESS
    again = web.client.post(first)
    assert again.status_code == 410 and h1(again) == "Dieser Link wurde bereits verwendet"
    # 61 minutes later the second one has expired (subscribe.data_link_minutes = 60).
    later = time.time() + 61 * 60
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    expired = web.client.get(second)
    assert expired.status_code == 410 and h1(expired) == "Dieser Link ist abgelaufen"
    monkeypatch.undo()
    # At most three links an hour: a forwarded settings link cannot flood the mailbox.
    count = len(web.mails())
    for _ in range(3):
        web.client.post(prefs + "/export", data={"csrf_token": csrf})
    assert len(web.mails()) == count + 1
    # A data link is no settings link, and no other purpose's token opens it.
    assert web.client.get("/preferences/" + web.data_link().rsplit("/", 1)[1]).status_code == 404
    unsubscribe = web.subs.unsubscribe_token(person)
    assert web.client.get(f"/my-data/{unsubscribe}").status_code == 404


def test_log_out_all_links(web: Web) -> None:
    person = web.activate(ADDRESS)
    old = f"/preferences/{web.subs.preferences_token(person)}"
    # A link from a mail sent before link versions existed is version 0.
    assert old == f"/preferences/{make_token(web.subs.secret, 'preferences', person.uid)}"
    csrf = web.csrf(old)
    web.client.post(old + "/export", data={"csrf_token": csrf})
    open_export = web.data_link()
    out = web.client.post(old + "/revoke", data={"csrf_token": csrf})
    assert out.status_code == 200 and h1(out) == "Alle Links wurden abgemeldet"
    revoked = web.client.get(old)
    assert revoked.status_code == 404 and h1(revoked) == "Dieser Link ist nicht mehr gültig"
    assert web.client.post(open_export).status_code == 404
    # The owner got a new settings link by mail; it works.
    mail = web.mails()[-1]
    assert mail["To"] == ADDRESS
    assert mail["Subject"] == "Ihr neuer Link zu den Newsletter-Einstellungen"
    fresh = web.link_path(PREFS_RE)
    assert fresh != old and web.client.get(fresh).status_code == 200
    current = web.store.find(ADDRESS)
    assert current is not None and current.link_version == 1
    assert fresh == f"/preferences/{web.subs.preferences_token(current)}"
    # The one-click unsubscribe of mails already sent keeps working.
    one_click = web.client.post(
        f"/unsubscribe/{web.subs.unsubscribe_token(person)}", data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    assert web.store.find(ADDRESS).status == "unsubscribed"  # type: ignore[union-attr]


@pytest.mark.usefixtures("without_approval")
def test_the_next_newsletter_carries_the_current_link_version(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)
    _, store = open_site(site_copy)
    try:
        anna = store.find("anna@example.org")
        assert anna is not None
        store.links.revoke(anna.id, anna.updated_at)
    finally:
        store.close()
    code, _, err = run_cli(site_copy, "send", ISSUE, "--now")
    assert code == 0, err
    versions = {}
    for path in outbox(site_copy):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = msg.get_body(("plain",))
        assert text is not None
        found = PREFS_RE.search(text.get_content())
        assert found is not None
        token = found.group(1).rsplit("/", 1)[1]
        versions[msg["To"]] = read_link(SECRET, "preferences", token).version
    assert versions == {
        "Anna <anna@example.org>": 1,
        "Bernd <bernd@example.org>": 0,
        "Carla <carla@example.org>": 0,
    }


def test_revoke_links_from_the_command_line(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with_subscribers(site_copy)
    code, out, _ = run_cli(site_copy, "subscribers", "revoke-links", "Anna@example.org")
    assert (code, out) == (
        0,
        "logged out all links of anna@example.org (key version 1): earlier settings, export "
        "and erasure links no longer work; the next newsletter carries new ones; unsubscribe "
        "links keep working\n",
    )
    code, _, err = run_cli(site_copy, "subscribers", "revoke-links", "niemand@example.org")
    assert (code, err) == (1, "error: niemand@example.org is not a subscriber\n")
