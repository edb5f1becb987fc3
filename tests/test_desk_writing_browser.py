"""The desk's writing pages in a real browser: a mistake typed into the editor is shown beside
its line by our script and goes away when it is fixed, form fields too; axe-core (WCAG 2 A/AA)
on the form, the raw editor and the "new" page; everything reachable by keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from .deskkit import ISSUE, SECRET, DeskSite, open_desk, violations

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


def _log_in(page: Page, site: DeskSite) -> None:
    erika = site.add("Erika", "editor", "erika@example.org")
    page.goto(f"{site.base}/desk/login")
    page.fill("#name", erika.name)
    page.fill("#password", erika.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/")


def _tab_to(page: Page, selector: str) -> None:
    """Press Tab until `selector` has the focus (it is reachable by keyboard)."""
    for _ in range(400):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} is never reached with Tab")


def test_a_mistake_is_shown_beside_its_line_while_typing_and_goes_when_fixed(
    desk_site: DeskSite, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    _log_in(page, desk_site)
    page.goto(f"{desk_site.base}/desk/edit/issue/{ISSUE}")
    assert violations(page) == ""
    body = page.locator("#body")
    lines = body.input_value().count("\n")
    body.focus()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nEin Bild: ![](/fehlt.png)")
    problem = page.locator("#problems-text li", has_text="fehlt.png").first
    expect(problem).to_be_visible()
    # Beside its line: the line of the body the editor sees (the file's is further down).
    expect(problem).to_contain_text(f"Zeile {lines + 2}: ")
    expect(page.locator("#problem-count")).not_to_contain_text("Fehler: 0")
    assert violations(page) == ""
    # The problem leads to its line: Enter on it selects the line, which the editor deletes.
    problem.locator("button").focus()
    page.keyboard.press("Enter")
    selected = "(t => t.value.slice(t.selectionStart, t.selectionEnd))(document.activeElement)"
    assert page.evaluate(selected) == "Ein Bild: ![](/fehlt.png)"
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    expect(page.locator("#problems-text li", has_text="fehlt.png")).to_have_count(0)
    # A field's problem stands at the field.
    page.fill("#field-subject", "")
    expect(page.locator("#problems-subject li")).to_have_count(1)
    page.fill("#field-subject", "Neuer Betreff")
    expect(page.locator("#problems-subject li")).to_have_count(0)
    # The save button is reached by keyboard; Enter saves.
    page.locator("#body").focus()
    _tab_to(page, "form[data-check] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**?done=save")
    expect(page.locator(".done")).to_have_text("Gespeichert.")
    text = (desk_site.root / "content" / "issues" / f"{ISSUE}.md").read_text(encoding="utf-8")
    assert 'subject: "Neuer Betreff"' in text and "fehlt.png" not in text
    assert not [line for line in console if "Content Security Policy" in line]


def test_the_raw_editor_and_the_new_page_pass_axe_and_work_by_keyboard(
    desk_site: DeskSite, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 768, "height": 1000})
    _log_in(page, desk_site)
    page.goto(f"{desk_site.base}/desk/edit/issue/{ISSUE}/raw")
    assert violations(page) == ""
    text = page.locator("#text")
    text.focus()
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.type("nummer: 3\n")
    problem = page.locator("#problems-text li", has_text="nummer").first
    expect(problem).to_contain_text("Zeile 2: ")
    assert violations(page) == ""
    page.goto(f"{desk_site.base}/desk/new/practice")
    assert violations(page) == ""
    _tab_to(page, "#title")
    page.keyboard.type("Lesepaten für alle")
    _tab_to(page, "button:not([name])")
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/edit/practice/lesepaten-fuer-alle?done=create")
    assert violations(page) == ""
    expect(page.locator("#problems-summary li, #problems-organisation li").first).to_be_visible()
