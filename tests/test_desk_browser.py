"""The desk in a real browser: login with password and TOTP by keyboard, then axe-core
(WCAG 2 A/AA) on every desk page, at laptop and tablet widths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser

from .deskkit import ISSUE, SECRET, DeskSite, open_desk, violations

# Chromium is slow to start and memory-hungry: the browser files share one xdist worker.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("chromium"),
    pytest.mark.sqlite_only("checks the pages in a browser; the storage has its own tests"),
]


@pytest.fixture
def desk_site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with open_desk(site_copy) as site:
        yield site


def test_desk_pages_pass_axe_after_a_keyboard_login(desk_site: DeskSite, browser: Browser) -> None:
    anna = desk_site.add("Anna Admin", "admin", "anna@example.org")
    assert anna.totp is not None
    blocked: list[str] = []
    for width in (1280, 768):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda msg: blocked.append(msg.text))
        page.goto(f"{desk_site.base}/desk/")
        assert page.url.endswith("/desk/login")
        assert violations(page) == ""
        # Keyboard only: the skip link, the header's link, then name, password, Enter.
        for _ in range(3):
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "name"
        page.keyboard.type(anna.name)
        page.keyboard.press("Tab")
        page.keyboard.type(anna.password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/desk/code")
        assert violations(page) == ""
        page.fill("#code", pyotp.TOTP(anna.totp).now())
        page.keyboard.press("Enter")
        page.wait_for_url("**/desk/")
        pages = ["/desk/", f"/desk/issues/{ISSUE}/", f"/desk/edit/issue/{ISSUE}", "/desk/audit"]
        for path in [*pages, "/desk/nothing"]:
            page.goto(desk_site.base + path)
            assert page.locator("h1").count() == 1, path
            assert violations(page) == "", path
        assert not [text for text in blocked if "Content Security Policy" in text]
        page.locator("form[action='/desk/logout'] button").click()
        page.wait_for_url("**/desk/login")
        page.close()
        if width == 1280:  # a code works once: wait for the next one on the second run
            anna = desk_site.add("Anna Admin 2", "admin")
