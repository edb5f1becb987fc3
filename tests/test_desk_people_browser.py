"""The desk's admin pages and single sign-on in a real browser: axe-core (WCAG 2 A/AA) on the
subscriber, account and settings pages, by keyboard where it matters, and the sign-on through
node-oidc-provider, whose page after the callback must reach the desk with the login cookie."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from .deskkit import SECRET, DeskSite, open_desk, violations
from .ledgerkit import run_cli
from .oidckit import sso_desk_on

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("chromium"),
    pytest.mark.sqlite_only("checks the pages in a browser; the storage has its own tests"),
]


def _log_in(page: Page, site: DeskSite, name: str, password: str, totp: str) -> None:
    page.goto(f"{site.base}/desk/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/code")
    page.fill("#code", pyotp.TOTP(totp).now())
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/")


def test_admin_pages_pass_axe(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, browser: Browser
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with open_desk(site_copy) as site:
        code, _out, err = run_cli(
            site.root, "subscribers", "add", "maria@example.org", "--confirmed",
            "--consent-note", "Formular", "--topic", "sprache",
        )  # fmt: skip
        assert code == 0, err
        person = site.store.find("maria@example.org")
        assert person is not None
        anna = site.add("Anna Admin", "admin", "anna@example.org")
        site.add("Erin Editor", "editor")
        assert anna.totp is not None
        for width in (1280, 768):
            page = browser.new_page(viewport={"width": width, "height": 900})
            _log_in(page, site, anna.name, anna.password, anna.totp)
            # The search by keyboard: the field, type, Enter.
            page.goto(f"{site.base}/desk/people")
            assert violations(page) == ""
            page.focus("#q")
            page.keyboard.type("maria")
            page.keyboard.press("Enter")
            page.wait_for_selector("text=maria@example.org")
            assert violations(page) == ""
            for path in (f"/desk/people/{person.uid}", "/desk/accounts", "/desk/settings"):
                page.goto(site.base + path)
                assert page.locator("h1").count() == 1, path
                assert violations(page) == "", path
            page.goto(f"{site.base}/desk/people/{person.uid}")
            page.locator(f"form[action='/desk/people/{person.uid}/erase'] button").click()
            page.wait_for_selector("input[name=confirm]", state="attached")
            assert violations(page) == ""  # the confirmation step
            page.goto(f"{site.base}/desk/accounts")
            page.get_by_role("button", name="Erin Editor: Neues Passwort und TOTP").click()
            page.wait_for_selector('h1:has-text("Erin Editor")')
            assert violations(page) == ""  # the new secrets, shown once
            page.close()
            if width == 1280:  # a code works once: the second run logs in as another admin
                anna = site.add("Anna Admin 2", "admin")
                assert anna.totp is not None


def test_sign_on_in_a_browser_reaches_the_desk(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, browser: Browser
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with sso_desk_on(site_copy, monkeypatch) as desk:
        desk.site.add("Anna Admin", "admin", "anna@example.org")
        page = browser.new_page()
        page.goto(f"{desk.site.base}/desk/login")
        assert violations(page) == ""
        page.get_by_role("link", name="Mit Single Sign-on anmelden").click()
        # The provider's development login form: any name, no password check.
        page.fill("input[name=login]", "anna")
        page.fill("input[name=password]", "any")
        page.locator("button[type=submit]").click()
        page.locator("button[type=submit]").click()  # the consent
        # The page after the callback goes on to the desk by itself, with the login cookie.
        page.wait_for_url(f"{desk.site.base}/desk/")
        assert page.locator("h1").inner_text() == "Redaktion"
        assert page.get_by_role("link", name="Protokoll").count() == 1
        assert violations(page) == ""
