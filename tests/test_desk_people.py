"""The desk's admin pages over real HTTP with the real app: subscribers (search, one person and
their consent ledger, export, erasure with a confirmation step), the accounts and the settings,
each only for admins and each action in the audit log."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import requests

from comms.audience.people_admin import PAGE_SIZE
from comms.core.config import load_config
from comms.db.people import Consent, NewSubscriber

from .deskkit import SECRET, DeskSite, Person, csrf, open_desk
from .ledgerkit import run_cli

# Every test logs in (an argon2 check costs a fair part of a second by design).
pytestmark = [pytest.mark.database, pytest.mark.slow]

SMTP_PASSWORD = "smtp-password-that-must-not-show-9f3k"


@pytest.fixture
def desk_site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    monkeypatch.setenv("COMMS_SMTP_PASSWORD", SMTP_PASSWORD)
    with open_desk(site_copy) as site:
        yield site


def log_in(site: DeskSite, person: Person) -> requests.Session:
    """A browser session logged in as `person` (with the TOTP code of now where needed)."""
    browser = requests.Session()
    form = browser.get(f"{site.base}/desk/login")
    data = {"csrf_token": csrf(form.text), "name": person.name, "password": person.password}
    answer = browser.post(f"{site.base}/desk/login", data=data)
    if person.totp is not None:
        data = {"csrf_token": csrf(answer.text), "code": pyotp.TOTP(person.totp).now()}
        answer = browser.post(f"{site.base}/desk/code", data=data)
    assert answer.url.endswith("/desk/"), answer.text
    return browser


def add_subscriber(site: DeskSite, address: str, note: str = "Formular 2026") -> None:
    code, _out, err = run_cli(
        site.root, "subscribers", "add", address, "--confirmed", "--consent-note", note,
        "--region", "braunschweig",
    )  # fmt: skip
    assert code == 0, err


def search(browser: requests.Session, site: DeskSite, query: str, page: int = 1) -> str:
    form = browser.get(f"{site.base}/desk/people")
    assert form.status_code == 200
    data = {"csrf_token": csrf(form.text), "q": query, "page": str(page)}
    answer = browser.post(f"{site.base}/desk/people", data=data)
    assert answer.status_code == 200
    return answer.text


def test_admin_searches_shows_exports_and_erases_a_subscriber(desk_site: DeskSite) -> None:
    add_subscriber(desk_site, "Maria.Muster@Example.org")
    add_subscriber(desk_site, "other@example.net")
    anna = desk_site.add("Anna Admin", "admin")
    browser = log_in(desk_site, anna)
    found = search(browser, desk_site, "MUSTER@")
    assert "maria.muster@example.org" in found and "other@example.net" not in found
    # LIKE's wildcards are plain characters in a search.
    assert "maria.muster" not in search(browser, desk_site, "%")
    person = desk_site.store.find("maria.muster@example.org")
    assert person is not None
    shown = browser.get(f"{desk_site.base}/desk/people/{person.uid}")
    assert shown.status_code == 200
    # The consent ledger: when, what, source, and the IP not kept (subscribe.keep_ip is off).
    assert "Einwilligungsprotokoll" in shown.text and "comms subscribers add" in shown.text
    assert "Formular 2026" in shown.text and "nicht gespeichert" in shown.text
    assert "Braunschweig" in shown.text
    # The export: the CLI's format, a download, only by POST with the form token.
    refused = browser.post(f"{desk_site.base}/desk/people/export", data={"format": "csv"})
    assert refused.status_code == 400
    token = csrf(shown.text)
    export = browser.post(
        f"{desk_site.base}/desk/people/export", data={"csrf_token": token, "format": "csv"}
    )
    assert export.status_code == 200
    assert "attachment" in export.headers["Content-Disposition"]
    _code, cli_csv, _err = run_cli(desk_site.root, "subscribers", "export", "--format", "csv")
    assert export.text == cli_csv
    assert {row["email"] for row in csv.DictReader(io.StringIO(export.text))} == {
        "maria.muster@example.org",
        "other@example.net",
    }
    as_json = browser.post(
        f"{desk_site.base}/desk/people/export", data={"csrf_token": token, "format": "json"}
    )
    assert len(json.loads(as_json.text)) == 2
    # Erasure: the first POST asks, the second erases.
    url = f"{desk_site.base}/desk/people/{person.uid}/erase"
    asked = browser.post(url, data={"csrf_token": token})
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
    assert desk_site.store.find("maria.muster@example.org") is not None
    erased = browser.post(url, data={"csrf_token": token, "confirm": "yes"})
    assert erased.status_code == 200 and erased.url.endswith("/desk/people?done=erase")
    assert desk_site.store.find("maria.muster@example.org") is None
    assert desk_site.store.suppression_reason("maria.muster@example.org") == "erased"
    assert browser.get(f"{desk_site.base}/desk/people/{person.uid}").status_code == 404
    log = desk_site.audit()
    actions = [(who, what) for who, what, _s, _v in log]
    assert actions[-3:] == [
        ("Anna Admin", "subscribers-export"),
        ("Anna Admin", "subscribers-export"),
        ("Anna Admin", "subscriber-erase"),
    ]
    # The audit log never names the erased address, nor its id.
    entries = browser.get(f"{desk_site.base}/desk/audit").text
    assert "maria.muster" not in entries and person.uid not in entries


def test_search_is_paged(desk_site: DeskSite) -> None:
    people = [
        NewSubscriber(f"p{n:03d}@example.org", regions=("braunschweig",))
        for n in range(PAGE_SIZE + 3)
    ]
    for person in people:
        desk_site.store.add_pending(person, Consent("request", "test"))
    browser = log_in(desk_site, desk_site.add("Anna Admin", "admin"))
    first = search(browser, desk_site, "example.org")
    assert f"{PAGE_SIZE + 3}" in first and "p000@" in first and f"p{PAGE_SIZE:03d}@" not in first
    second = search(browser, desk_site, "example.org", 2)
    assert f"p{PAGE_SIZE:03d}@" in second and "p000@" not in second


def test_only_admins_see_the_people_pages(desk_site: DeskSite) -> None:
    add_subscriber(desk_site, "maria@example.org")
    person = desk_site.store.find("maria@example.org")
    assert person is not None
    erin = log_in(desk_site, desk_site.add("Erin Editor", "editor"))
    for path in ("/desk/people", f"/desk/people/{person.uid}", "/desk/accounts", "/desk/settings"):
        answer = erin.get(desk_site.base + path)
        assert answer.status_code == 403 and "maria@" not in answer.text, path
    token = csrf(erin.get(f"{desk_site.base}/desk/").text)
    for path in ("/desk/people/export", f"/desk/people/{person.uid}/erase"):
        answer = erin.post(desk_site.base + path, data={"csrf_token": token, "confirm": "yes"})
        assert answer.status_code == 403, path
    assert desk_site.store.find("maria@example.org") is not None
    anonymous = requests.get(f"{desk_site.base}/desk/people/{person.uid}", timeout=30)
    assert anonymous.url.endswith("/desk/login") and "maria@" not in anonymous.text


def test_admin_disables_and_resets_accounts(desk_site: DeskSite) -> None:
    anna = desk_site.add("Anna Admin", "admin")
    erin = desk_site.add("Erin Editor", "editor")
    paul = desk_site.add("Paul Approver", "approver")
    erin_browser = log_in(desk_site, erin)
    admin = log_in(desk_site, anna)
    page = admin.get(f"{desk_site.base}/desk/accounts")
    assert page.status_code == 200 and "Erin Editor" in page.text and "Paul Approver" in page.text
    token = csrf(page.text)
    # Not one's own account: that could lock the last admin out.
    own = admin.post(
        f"{desk_site.base}/desk/accounts/disable", data={"csrf_token": token, "name": anna.name}
    )
    assert own.status_code == 409
    done = admin.post(
        f"{desk_site.base}/desk/accounts/disable", data={"csrf_token": token, "name": erin.name}
    )
    assert done.url.endswith("/desk/accounts?done=disable")
    # Erin's login ended at once.
    assert erin_browser.get(f"{desk_site.base}/desk/").url.endswith("/desk/login")
    code, out, _err = run_cli(desk_site.root, "users", "list", "--json")
    assert code == 0
    assert {a["name"]: a["disabled"] for a in json.loads(out)}["Erin Editor"] is True
    reset = admin.post(
        f"{desk_site.base}/desk/accounts/reset", data={"csrf_token": token, "name": paul.name}
    )
    assert reset.status_code == 200 and "otpauth://" in reset.text
    password = reset.text.split("<dt>Passwort</dt><dd><code>")[1].split("</code>")[0]
    secret = reset.text.split("<dt>TOTP-Geheimnis</dt><dd><code>")[1].split("</code>")[0]
    assert password != paul.password
    log_in(desk_site, Person(paul.name, password, secret))
    actions = [(who, what, subject) for who, what, subject, _v in desk_site.audit()]
    assert ("Anna Admin", "account-disable", "Erin Editor") in actions
    assert ("Anna Admin", "account-reset", "Paul Approver") in actions


def test_settings_view_shows_no_secrets(desk_site: DeskSite) -> None:
    assert SMTP_PASSWORD in load_config(desk_site.root / "comms.toml").secret_values()
    admin = log_in(desk_site, desk_site.add("Anna Admin", "admin"))
    page = admin.get(f"{desk_site.base}/desk/settings")
    assert page.status_code == 200
    assert "[desk]" in page.text and "lockout_after" in page.text
    assert SMTP_PASSWORD not in page.text and SECRET not in page.text
    assert "<code>password</code></td><td>gesetzt</td>" in page.text
    # GET changes nothing and there is no form to change anything with.
    assert "<form" not in page.text.split("<main")[1].split("</main>")[0]
