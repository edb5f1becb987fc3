"""The desk's sending pages in a real browser: send now by keyboard through the confirmation,
watch the status page reload by itself until the send is done, then axe-core (WCAG 2 A/AA) on
the confirmation, status, sends, report and audience pages, at laptop and tablet widths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from comms.core.clock import now_utc

from .deskkit import ISSUE, SECRET, DeskSite, open_desk, violations
from .smtp_servers import Handler, smtp_server
from .test_desk_sending import ADDRESSES, FAST, approve, import_people

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("chromium"),
    pytest.mark.sqlite_only("checks the pages in a browser; the storage has its own tests"),
]


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def desk_site(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, handler: Handler
) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    with smtp_server(handler) as port:
        monkeypatch.setenv("COMMS_TRANSPORT", f"smtp://127.0.0.1:{port}")
        import_people(site_copy)
        with open_desk(site_copy) as site:
            yield site


def _log_in(page: Page, site: DeskSite, name: str, password: str, totp: str) -> None:
    page.goto(f"{site.base}/desk/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/code")
    page.fill("#code", pyotp.TOTP(totp).now())
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/")


def test_send_now_and_watch_it_in_the_browser(
    desk_site: DeskSite, browser: Browser, handler: Handler
) -> None:
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    assert paul.totp is not None
    approve(desk_site.root)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, desk_site, paul.name, paul.password, paul.totp)
    page.goto(f"{desk_site.base}/desk/issues/{ISSUE}/")
    assert violations(page) == ""
    # Keyboard only: focus the button, Enter; the confirmation page; its button, Enter.
    page.get_by_role("button", name="Jetzt senden …").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/desk/issues/{ISSUE}/send")
    assert page.locator("h1").inner_text() == "Versand bestätigen"
    assert violations(page) == ""
    page.get_by_role("button", name="Diese Fassung jetzt senden").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/desk/sends/{ISSUE}/")
    # The page reloads by itself (no script) until the send is done.
    page.get_by_text("abgeschlossen").wait_for(timeout=60_000)
    assert page.locator("#progress-all").get_attribute("value") == "3"
    assert page.get_by_text("3 von 3 Zustellungen erledigt.").count() == 1
    assert sorted(r.rcpt_tos[0] for r in handler.received) == ADDRESSES
    for width in (1280, 768):
        page.set_viewport_size({"width": width, "height": 900})
        for path in (
            f"/desk/sends/{ISSUE}/",
            "/desk/sends/",
            f"/desk/issues/{ISSUE}/report",
            "/desk/report/audience",
        ):
            page.goto(desk_site.base + path)
            assert page.locator("h1").count() == 1, path
            assert violations(page) == "", path
    # The schedule's confirmation and the page of a refusal.
    page.goto(f"{desk_site.base}/desk/issues/2019-11-newsletter/")
    day = (now_utc() + timedelta(days=2)).astimezone(desk_site.config.tz).date()
    page.fill("#send-date", day.isoformat())
    page.fill("#send-time", "08:15")
    page.get_by_role("button", name="Zeitpunkt festlegen …").click()
    page.wait_for_url("**/desk/issues/2019-11-newsletter/schedule")
    assert page.locator("h1").inner_text() == "Nicht gesendet"  # nobody approved it
    assert violations(page) == ""
    page.close()
