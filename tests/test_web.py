"""The subscriber pages through Flask's test client: sign-up, double opt-in, unsubscribe,
preferences, self-service export and erasure (docs/requirements.md E7, L1–L6, L11, L12, L15)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from comms.audience.limits import SharedLimit
from comms.audience.subscriptions import purge_unconfirmed
from comms.core.keys import Purpose
from comms.db.people import Subscriber
from comms.web.guard import CsrfGuard

from .databases import Databases
from .ledgerkit import make_store
from .webkit import Web, open_web

pytestmark = pytest.mark.database

H1_RE = re.compile(r"<h1>(.*?)</h1>", re.S)
ADDRESS = "erika.muster@example.org"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path) as kit:
        yield kit


def h1(response: object) -> str:
    found = H1_RE.search(response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert found
    return found.group(1)


def activate(web: Web, email: str = ADDRESS) -> Subscriber:
    assert web.sign_up(email).status_code == 200
    assert web.client.post(web.confirm_path()).status_code == 200
    person = web.store.find(email)
    assert person is not None and person.status == "active"
    return person


def test_form_is_german_minimal_and_unticked(web: Web) -> None:
    response = web.client.get("/subscribe")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="de"' in html
    assert html.count("<h1>") == 1
    assert h1(response) == "Newsletter abonnieren"
    assert re.findall(r"<input[^>]*\brequired\b", html) == [
        '<input type="email" id="email" name="email" required'
    ]
    assert "checked" not in html  # no pre-ticked consent (docs/requirements.md L5)
    assert html.count('type="checkbox"') == 9 + 5
    assert web.config.settings.subscribe.consent_text in html
    assert 'href="https://example.org/datenschutz">Datenschutzerklärung</a>' in html
    assert "<script" not in html
    for field in ("email", "name", "website"):  # every input has its label
        assert f'<label for="{field}">' in html


def test_sign_up_sends_a_neutral_german_confirmation(web: Web) -> None:
    response = web.sign_up(ADDRESS, name="Erika", topics=["sprache", "unbekannt"])
    assert response.status_code == 200
    assert h1(response) == "Bitte bestätigen Sie Ihr Abonnement"
    person = web.store.find(ADDRESS)
    assert person is not None
    assert (person.status, person.name, person.topics) == ("pending", "Erika", ("sprache",))
    [mail] = web.mails()
    raw = web.outbox[0].data
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # E6: an ASCII header block
    for name in ("Date", "From", "To", "Subject", "Message-ID"):  # E1
        assert head.count(f"\r\n{name}: ") + head.startswith(f"{name}: ") == 1, name
    assert re.search(r"(^|\r\n)Date: .+ [+-]\d{4}\r\n", head) and "-0000" not in head  # E3
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78  # E5
    assert [p.get_content_type() for p in mail.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]  # E4
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["From"].addresses[0].addr_spec == "bestaetigung@example.org"
    assert mail["To"] == ADDRESS
    assert mail["Subject"] == "Bitte bestätigen Sie Ihr Newsletter-Abonnement"
    assert mail["List-Unsubscribe"] is None and mail["Message-ID"].endswith(
        "@newsletter.example.org>"
    )
    html = mail.get_body(("html",))
    assert html is not None
    links = set(re.findall(r'href="([^"]+)"', html.get_content()))
    confirm = "https://newsletter.example.org" + web.confirm_path()
    # No tracking and no newsletter content: the confirmation link and the legal pages only.
    assert links <= {
        confirm,
        "https://example.org/impressum",
        "https://example.org/datenschutz",
        "mailto:info@example.org",
    }
    assert "<img" not in html.get_content()
    report = web.store.report(ADDRESS)
    assert report is not None
    [request] = report["consent"]
    assert request["action"] == "request"
    assert request["consent_version"] == "2026-11"
    assert request["ip"] is None and request["user_agent"] is None  # keep_ip is off
    assert mail["Message-ID"] in request["note"]
    assert request["source"] == "https://newsletter.example.org/subscribe"


def test_same_answer_for_new_known_active_and_suppressed_addresses(web: Web) -> None:
    activate(web, "aktiv@example.org")
    web.sign_up("weg@example.org")
    web.client.post(web.confirm_path())
    web.store.erase("weg@example.org")
    sent_before = len(web.mails())
    bodies = {
        email: web.sign_up(email).get_data()
        for email in ("neu@example.org", "aktiv@example.org", "weg@example.org")
    }
    assert len(set(bodies.values())) == 1
    # Only the new address got a mail: the active one is left alone, the erased one is blocked.
    assert [m["To"] for m in web.mails()[sent_before:]] == ["neu@example.org"]


def test_confirmation_needs_a_post_and_a_reused_link_changes_nothing(web: Web) -> None:
    web.sign_up(ADDRESS)
    path = web.confirm_path()
    page = web.client.get(path)
    assert page.status_code == 200 and h1(page) == "Abonnement bestätigen"
    # Relative, so that the pages also work behind a proxy under a path prefix.
    assert f'<form method="post" action="../{path[1:]}">' in page.get_data(as_text=True)
    assert web.store.find(ADDRESS).status == "pending"  # type: ignore[union-attr]
    done = web.client.post(path)
    assert done.status_code == 200 and h1(done) == "Vielen Dank!"
    assert web.store.find(ADDRESS).status == "active"  # type: ignore[union-attr]
    again = web.client.post(path)
    assert h1(again) == "Ihr Abonnement ist bereits bestätigt"
    # Unsubscribed later, the old confirmation link does not bring the person back.
    person = web.store.find(ADDRESS)
    assert person is not None
    web.client.post(f"/unsubscribe/{web.subs.unsubscribe_token(person)}")
    assert h1(web.client.post(path)) == "Dieser Link wurde bereits verwendet"
    assert web.store.find(ADDRESS).status == "unsubscribed"  # type: ignore[union-attr]
    actions = [e["action"] for e in web.store.report(ADDRESS)["consent"]]  # type: ignore[index]
    assert actions == ["request", "confirm", "unsubscribe"]


def test_unsubscribed_person_can_subscribe_again_with_double_opt_in(web: Web) -> None:
    person = activate(web)
    web.client.post(f"/unsubscribe/{web.subs.unsubscribe_token(person)}")
    assert web.store.suppression_reason(ADDRESS) == "unsubscribed"
    assert web.sign_up(ADDRESS).status_code == 200
    assert len(web.mails()) == 2
    assert web.store.find(ADDRESS).status == "unsubscribed"  # type: ignore[union-attr]
    assert h1(web.client.post(web.confirm_path())) == "Vielen Dank!"
    assert web.store.find(ADDRESS).status == "active"  # type: ignore[union-attr]
    assert web.store.suppression_reason(ADDRESS) is None
    report = web.store.report(ADDRESS)
    assert report is not None
    actions = [e["action"] for e in report["consent"]]
    assert actions == ["request", "confirm", "unsubscribe", "request", "confirm"]


def test_expired_link_offers_a_new_mail(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    web.sign_up(ADDRESS)
    person = web.store.find(ADDRESS)
    assert person is not None
    eight_days_ago = int((datetime.now(UTC) - timedelta(days=8)).timestamp())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: eight_days_ago)
    old = web.subs.confirm_url(person.uid).removeprefix("https://newsletter.example.org")
    monkeypatch.undo()
    for method in (web.client.get, web.client.post):
        page = method(old)
        assert page.status_code == 200
        assert h1(page) == "Dieser Bestätigungslink ist abgelaufen"
    assert web.store.find(ADDRESS).status == "pending"  # type: ignore[union-attr]
    resent = web.client.post(old + "/resend")
    assert resent.status_code == 200
    assert len(web.mails()) == 2
    assert web.client.post(web.confirm_path()).status_code == 200
    assert web.store.find(ADDRESS).status == "active"  # type: ignore[union-attr]


def test_cross_site_post_is_refused_in_german_even_with_a_token(web: Web) -> None:
    # A token fetched by a server works in any browser (issue 21, finding 5): a cross-site
    # POST is refused whatever it carries, with our form filled in again.
    token = web.csrf()
    for headers in (
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
    ):
        # `Origin: null` alone may be our own form (no-referrer): then the token decides.
        tokens = [None] if headers == {"Origin": "null"} else [None, token]
        for data in ({"email": ADDRESS} | ({"csrf_token": t} if t else {}) for t in tokens):
            response = web.client.post("/subscribe", data=data, headers=headers)
            assert response.status_code == 400
            text = response.get_data(as_text=True)
            assert "Ihr Browser hat dieses Formular von einer anderen Website gesendet." in text
            assert 'name="csrf_token" value="' in text  # a fresh form
            assert f'value="{ADDRESS}"' in text
    assert web.store.find(ADDRESS) is None and web.mails() == []


def test_our_own_form_as_chromium_posts_it_is_taken(web: Web) -> None:
    # Referrer-Policy: no-referrer makes Chromium send `Origin: null` for our own form.
    data = {"email": ADDRESS, "csrf_token": web.csrf()}
    for headers in (
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null"},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    ):
        response = web.client.post("/subscribe", data=data, headers=headers)
        assert response.status_code == 200, headers


def test_post_with_only_the_address_works_for_non_browser_clients(web: Web) -> None:
    # No Origin, no Referer: not a cross-site browser form (a fixed point in docs/architecture.md:
    # POST /subscribe with field `email`); the double opt-in mail proves the address.
    response = web.client.post("/subscribe", data={"email": ADDRESS})
    assert response.status_code == 200 and h1(response) == "Bitte bestätigen Sie Ihr Abonnement"
    assert len(web.mails()) == 1
    same_site = web.client.post(
        "/subscribe", data={"email": "b@example.org"}, headers={"Origin": "http://localhost"}
    )
    assert same_site.status_code == 200


def test_honeypot_gives_the_same_answer_and_does_nothing(web: Web) -> None:
    filled = web.sign_up(ADDRESS, website="http://spam.example")
    assert filled.status_code == 200 and h1(filled) == "Bitte bestätigen Sie Ihr Abonnement"
    assert web.store.find(ADDRESS) is None and web.mails() == []


def test_invalid_address_gets_the_form_again(web: Web) -> None:
    response = web.sign_up("kein-at-zeichen", name="Max")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Bitte geben Sie eine gültige E-Mail-Adresse ein" in html
    assert 'value="kein-at-zeichen"' in html and 'aria-invalid="true"' in html


def test_rate_limit_answers_429_in_german(tmp_path: Path) -> None:
    with open_web(tmp_path, subscribe={"rate_limit": 2, "rate_window": 600}) as web:
        assert web.sign_up("a@example.org").status_code == 200
        assert web.sign_up("b@example.org").status_code == 200
        third = web.sign_up("c@example.org")
        assert third.status_code == 429
        assert h1(third) == "Zu viele Anfragen"
        assert 1 <= int(third.headers["Retry-After"]) <= 601
        assert web.store.find("c@example.org") is None


@pytest.mark.parametrize("multipart", [False, True])
def test_one_click_unsubscribe(web: Web, multipart: bool) -> None:
    person = activate(web)
    path = f"/unsubscribe/{web.subs.unsubscribe_token(person)}"
    page = web.client.get(path)
    assert page.status_code == 200 and h1(page) == "Newsletter abbestellen"
    # Mailbox providers are given this URL: it leads to no settings, no data (issue 14).
    assert "/preferences/" not in page.get_data(as_text=True)
    assert web.store.find(ADDRESS).status == "active"  # type: ignore[union-attr]  # GET: no change
    cookies = web.client._cookies  # werkzeug's test client has no public "forget all cookies"
    assert cookies is not None
    cookies.clear()  # a mailbox provider has none
    body = {"List-Unsubscribe": "One-Click"}
    response = (
        web.client.post(path, data=body, content_type="multipart/form-data")
        if multipart
        else web.client.post(path, data=body)
    )
    assert response.status_code == 200 and h1(response) == "Sie sind abgemeldet"
    assert web.store.find(ADDRESS).status == "unsubscribed"  # type: ignore[union-attr]
    [event] = [e for e in web.store.report(ADDRESS)["consent"] if e["action"] == "unsubscribe"]  # type: ignore[index]
    assert event["channel"] == "one-click"
    assert web.client.post(path, data=body).status_code == 200  # again: still 200
    assert len(web.mails()) == 1  # no goodbye mail


def test_unsubscribe_button_counts_as_link_and_forged_tokens_are_404(web: Web) -> None:
    person = activate(web)
    token = web.subs.unsubscribe_token(person)
    assert web.client.post(f"/unsubscribe/{token}").status_code == 200
    [event] = [e for e in web.store.report(ADDRESS)["consent"] if e["action"] == "unsubscribe"]  # type: ignore[index]
    assert event["channel"] == "link"
    forged_token = ("B" if token[0] == "A" else "A") + token[1:]  # another uid, same signature
    forged = web.client.post(f"/unsubscribe/{forged_token}", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 404 and h1(forged) == "Dieser Link ist ungültig"


def test_preferences_change_topics_regions_and_language(web: Web) -> None:
    person = activate(web)
    path = f"/preferences/{web.subs.preferences_token(person)}"
    page = web.client.get(path)
    assert page.status_code == 200 and h1(page) == "Newsletter-Einstellungen"
    data = {
        "topics": ["arbeit", "kultur", "erfunden"],
        "regions": ["weser-ems"],
        "language": "en",
        "csrf_token": web.csrf(path),
    }
    saved = web.client.post(path, data=data)
    assert saved.status_code == 200
    # The page now speaks the language the person chose.
    assert "Your settings have been saved." in saved.get_data(as_text=True)
    changed = web.store.find(ADDRESS)
    assert changed is not None
    assert (changed.topics, changed.regions, changed.language) == (
        ("arbeit", "kultur"),
        ("weser-ems",),
        "en",
    )
    refused = web.client.post(path, data={"topics": ["sprache"]})
    assert refused.status_code == 400
    assert web.store.find(ADDRESS).topics == ("arbeit", "kultur")  # type: ignore[union-attr]


def test_export_and_erasure(web: Web) -> None:
    person = activate(web)
    path = f"/preferences/{web.subs.preferences_token(person)}"
    csrf = web.csrf(path)
    asked = web.client.post(path + "/export", data={"csrf_token": csrf})
    assert asked.status_code == 200 and h1(asked) == "Bitte sehen Sie in Ihr E-Mail-Postfach"
    link = web.data_link()
    assert web.client.get(link).status_code == 200  # a page with a button; scanners change nothing
    export = web.client.post(link)
    assert export.status_code == 200 and export.mimetype == "application/json"
    assert "attachment" in export.headers["Content-Disposition"]
    data = json.loads(export.get_data(as_text=True))
    assert data["email"] == ADDRESS and data["status"] == "active"
    assert [e["action"] for e in data["consent"]] == ["request", "confirm"]
    assert data["consent_text"] == {"2026-11": web.config.settings.subscribe.consent_text}
    assert web.client.post(link).status_code == 410  # single use
    not_ticked = web.client.post(path + "/delete", data={"csrf_token": csrf})
    assert not_ticked.status_code == 400
    web.client.post(path + "/delete", data={"csrf_token": csrf, "really": "yes"})
    assert web.store.find(ADDRESS) is not None  # nothing happens before the mailed link is used
    gone = web.client.post(web.data_link())
    assert gone.status_code == 200 and h1(gone) == "Ihre Daten wurden gelöscht"
    assert web.store.find(ADDRESS) is None
    assert web.store.suppression_reason(ADDRESS) == "erased"
    assert web.client.get(path).status_code == 404


def test_ip_and_user_agent_only_when_configured(tmp_path: Path) -> None:
    with open_web(tmp_path, subscribe={"keep_ip": True}) as web:
        data = {"email": ADDRESS, "csrf_token": web.csrf()}
        web.client.post("/subscribe", data=data, headers={"User-Agent": "Testbrowser/1.0"})
        web.client.post(web.confirm_path(), headers={"User-Agent": "Testbrowser/1.0"})
        events = web.store.report(ADDRESS)["consent"]  # type: ignore[index]
        assert [(e["action"], e["ip"], e["user_agent"]) for e in events] == [
            ("request", "127.0.0.1", "Testbrowser/1.0"),
            ("confirm", "127.0.0.1", "Testbrowser/1.0"),
        ]


def test_purge_removes_old_unconfirmed_sign_ups_only(web: Web) -> None:
    web.sign_up("alt@example.org")
    activate(web, "aktiv@example.org")
    now = datetime.now(UTC)
    assert purge_unconfirmed(web.config, web.store, now) == 0
    assert purge_unconfirmed(web.config, web.store, now + timedelta(days=7, minutes=1)) == 1
    assert web.store.find("alt@example.org") is None
    assert web.store.find("aktiv@example.org") is not None


def test_healthz_and_static_files_after_the_routes(web: Web) -> None:
    response = web.client.get("/healthz")
    body = response.get_json()
    # The contract load balancers rely on; tests/test_health.py covers what comes with it.
    assert response.status_code == 200 and (body["status"], body["database"]) == ("ok", "ok")
    missing = web.client.get("/gibt-es-nicht")
    assert missing.status_code == 404 and h1(missing) == "404 – Seite nicht gefunden"
    for bad in ("/a%00b", "/" + "x" * 5000):  # found by test_web_fuzz: once a 500
        assert web.client.get(bad).status_code == 404
    wrong = web.client.delete("/subscribe")
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]


def test_one_address_gets_at_most_three_mails_an_hour(web: Web) -> None:
    answers = {web.sign_up(ADDRESS).get_data() for _ in range(4)}
    assert len(answers) == 1  # the fourth gets the same page …
    assert len(web.mails()) == 3  # … but no mail


def test_healthz_reports_an_unreachable_database(web: Web, database: Databases) -> None:
    if database.postgresql:  # a port nothing listens on
        web.store.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/comms")
    else:
        web.store.engine = sa.create_engine("sqlite:////nonexistent/folder/comms.db")
    response = web.client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}


def test_rate_limiter_window_slides_and_csrf_tokens_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    limiter = SharedLimit(make_store(tmp_path), Purpose.SIGNUP_RATE, 2, 60, clock=lambda: now[0])
    assert (limiter.hit("ip"), limiter.hit("ip"), limiter.hit("other")) == (0, 0, 0)
    assert limiter.hit("ip") == 60
    now[0] += 59.5
    assert limiter.hit("ip") == 1.0  # never less than a second in Retry-After
    now[0] += 0.5
    assert limiter.hit("ip") == 0
    guard = CsrfGuard("geheim", max_age=60)
    token = guard.issue("subscribe")
    assert guard.check("subscribe", token)
    assert not guard.check("preferences:abc", token)
    assert not guard.check("subscribe", token.replace("subscribe:", "subscribf:", 1))
    assert not CsrfGuard("anderes").check("subscribe", token)
    an_hour_ago = int(datetime.now(UTC).timestamp()) - 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: an_hour_ago)
    old = guard.issue("subscribe")
    monkeypatch.undo()
    assert not guard.check("subscribe", old)


@pytest.mark.parametrize("path", ["unsubscribe", "preferences", "confirm"])
def test_an_encoded_slash_in_a_token_is_invalid_not_a_redirect(web: Web, path: str) -> None:
    # Found by test_web_fuzz: Werkzeug merged `//` and redirected (308) to another token's page.
    assert web.client.get(f"/{path}/%2F0").status_code == 404
    assert web.client.post(f"/{path}/%2F0").status_code in (404, 405)
