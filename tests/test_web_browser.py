"""The subscriber pages in Debian's chromium: the sign-up form filled in and submitted, the
confirmation, preferences and unsubscribe pages; axe-core (WCAG 2 A/AA), phone width, no JS,
no third-party requests, visible focus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from werkzeug.serving import make_server

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.build import collect, write_output
from comms.publish.producer import Build
from comms.publish.state import FileState

from .conftest import copy_sample
from .test_browser import _open, _violations, browser  # noqa: F401  (fixture)
from .webkit import Web, open_web

pytestmark = [pytest.mark.database, pytest.mark.slow, pytest.mark.xdist_group("chromium")]


@pytest.fixture
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Web]]:
    """The subscriber app on 127.0.0.1 over a built site (its style sheet), mail into memory."""
    with open_web(tmp_path_factory.mktemp("pages")) as web:
        # The build writes var/ beside its comms.toml: build a copy, not the repository's.
        sample = load_config(copy_sample(tmp_path_factory.mktemp("sample")) / "comms.toml")
        content, _ = read_site(sample)
        write_output(web.config.output_dir, collect(Build(sample, content, FileState(sample.root))))
        httpd = make_server("127.0.0.1", 0, web.app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_port}", web
        httpd.shutdown()


def check(page: Page, hosts: set[str]) -> None:
    """German, one h1, no script, axe-clean, no horizontal scrolling at phone width."""
    page.wait_for_load_state()  # after a click the next page may still be loading
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # style.css came
    assert page.evaluate("document.documentElement.lang") == "de"
    assert page.locator("h1").count() == 1
    assert page.locator("script").count() == 0
    assert _violations(page) == ""
    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.set_viewport_size({"width": 1024, "height": 900})
    assert hosts <= {"127.0.0.1"}


def test_sign_up_confirm_preferences_unsubscribe_in_chromium(
    browser: Browser,  # noqa: F811
    site: tuple[str, Web],
) -> None:
    base, web = site
    hosts: set[str] = set()
    page = _open(browser, base + "/subscribe", 375, hosts)
    check(page, hosts)
    for box in page.locator("input[type=checkbox]").all():
        assert not box.is_checked()
    page.keyboard.press("Tab")  # the skip link first, then the navigation …
    page.locator("#email").focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.get_by_label("E-Mail-Adresse (Pflichtfeld)").fill("browser@example.org")
    page.get_by_label("Arbeit und Ausbildung").check()
    page.get_by_role("button", name="Newsletter bestellen").click()
    assert page.locator("h1").inner_text() == "Bitte bestätigen Sie Ihr Abonnement"
    check(page, hosts)

    page.goto(base + web.confirm_path())
    assert page.locator("h1").inner_text() == "Abonnement bestätigen"
    check(page, hosts)
    page.get_by_role("button", name="Abonnement bestätigen").click()
    assert page.locator("h1").inner_text() == "Vielen Dank!"
    check(page, hosts)

    # The confirmation page links to no settings (issue 14): they come with the newsletter.
    assert page.get_by_role("link", name="Einstellungen ändern").count() == 0
    person = web.store.find("browser@example.org")
    assert person is not None
    settings = f"{base}/preferences/{web.subs.preferences_token(person)}"
    page.goto(settings)
    assert page.locator("h1").inner_text() == "Newsletter-Einstellungen"
    assert page.get_by_label("Arbeit und Ausbildung").is_checked()
    check(page, hosts)
    page.get_by_label("Weser-Ems").check()
    page.get_by_role("button", name="Einstellungen speichern").click()
    assert page.get_by_role("status").inner_text() == "Ihre Einstellungen wurden gespeichert."
    check(page, hosts)
    person = web.store.find("browser@example.org")
    assert person is not None and person.regions == ("weser-ems",)
    page.get_by_role("button", name="Link zum Herunterladen schicken").click()
    assert page.locator("h1").inner_text() == "Bitte sehen Sie in Ihr E-Mail-Postfach"
    check(page, hosts)
    page.goto(base + web.data_link())
    assert page.locator("h1").inner_text() == "Ihre Daten herunterladen"
    check(page, hosts)
    page.goto(settings)

    page.get_by_role("link", name="Newsletter abbestellen").click()
    assert page.locator("h1").inner_text() == "Newsletter abbestellen"
    check(page, hosts)
    page.get_by_role("button", name="Abmelden").click()
    assert page.locator("h1").inner_text() == "Sie sind abgemeldet"
    check(page, hosts)
    assert web.store.find("browser@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    page.close()


def test_error_pages_pass_axe(browser: Browser, site: tuple[str, Web], tmp_path: Path) -> None:  # noqa: F811
    base, _ = site
    hosts: set[str] = set()
    for path in ("/confirm/kaputt", "/gibt-es-nicht"):
        page = _open(browser, base + path, 1024, hosts)
        check(page, hosts)
        page.close()
