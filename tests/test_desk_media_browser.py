"""The desk's media pages in a real browser: an image uploaded and a translation saved with the
keyboard, axe-core (WCAG 2 A/AA) on each page, the original beside its translation on a laptop
and above it on a tablet held upright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page

from .deskkit import SECRET, DeskSite, open_desk, violations
from .test_desk_media import _git

# Chromium is slow to start and memory-hungry: the browser files share one xdist worker.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("chromium"),
    pytest.mark.sqlite_only("checks the pages in a browser; the storage has its own tests"),
]

EVENT = "2019-06-03-werkstatt-frauen"


@pytest.fixture
def desk_site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    _git(site_copy, "init", "--quiet")
    _git(site_copy, "add", "content", "static")
    _git(site_copy, "commit", "--quiet", "-m", "Start")
    with open_desk(site_copy) as site:
        yield site


def _focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def _tab_to(page: Page, element: str) -> None:
    """Press Tab (at most 30 times) until `element` has the focus."""
    for _ in range(30):
        if _focused(page) == element:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element}")


def test_media_pages_by_keyboard_pass_axe_at_laptop_and_tablet_widths(
    desk_site: DeskSite, browser: Browser, tmp_path: Path
) -> None:
    erika = desk_site.add("Erika", "editor")
    photo = tmp_path / "foto.jpg"
    Image.new("RGB", (1600, 1200), (30, 120, 90)).save(photo, "JPEG")
    blocked: list[str] = []
    for width in (1280, 768):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda msg: blocked.append(msg.text))
        page.goto(f"{desk_site.base}/desk/login")
        page.fill("#name", erika.name)
        page.fill("#password", erika.password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/desk/")

        # The upload: the header's link leads there; every field is reached with Tab.
        page.get_by_role("link", name="Bilder").click()
        page.wait_for_url("**/desk/images")
        assert page.locator("h1").count() == 1
        assert violations(page) == ""
        page.set_input_files("#file", str(photo))
        page.focus("#file")
        page.keyboard.press("Tab")
        assert _focused(page) == "alt"
        page.keyboard.type("Ein grünes Bild")
        for field, text in (("caption", "Grün"), ("credit", "Erika"), ("name", f"foto-{width}")):
            page.keyboard.press("Tab")
            assert _focused(page) == field
            page.keyboard.type(text)
        # An editor has no "replace" box (approvers only): the next stop is the button.
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Bild hochgeladen")
        assert f"images/foto-{width}.jpg" in page.inner_text("main")
        assert page.input_value("#markdown") == f"![Ein grünes Bild](/images/foto-{width}.jpg)"
        assert violations(page) == ""

        # The translations: the list, then one beside its original.
        page.get_by_role("link", name="Übersetzungen").click()
        page.wait_for_url("**/desk/translations")
        assert violations(page) == ""
        original_file = desk_site.root / "content" / "events" / f"{EVENT}.md"
        if width == 768:  # the original changed: the page says so and shows how
            changed = original_file.read_text("utf-8").replace("acht Werkstatt", "neun Werkstatt")
            original_file.write_text(changed, "utf-8")
        page.goto(f"{desk_site.base}/desk/translate/event/{EVENT}/en")
        assert page.locator("h1").count() == 1
        assert page.locator("details").count() == (1 if width == 768 else 0)
        assert violations(page) == ""
        original = page.locator("section[aria-labelledby='original-body'] pre").bounding_box()
        translation = page.locator("#body").bounding_box()
        assert original is not None and translation is not None
        if width == 1280:  # side by side
            assert translation["x"] > original["x"] + original["width"] - 1
            assert abs(translation["y"] - original["y"]) < 60
        else:  # stacked: the original above its translation, as wide
            assert translation["y"] > original["y"] + original["height"] - 1
            assert abs(translation["x"] - original["x"]) < 2
        page.focus("#fields")
        page.keyboard.press("Tab")
        assert _focused(page) == "body"
        page.keyboard.press("Control+End")
        page.keyboard.type(f"\nChecked at {width} px.\n")
        _tab_to(page, "follows")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**?done=save")
        assert page.locator("p.done").inner_text() == "Gespeichert."
        assert violations(page) == ""
        page.close()
    assert not [text for text in blocked if "Content Security Policy" in text]
    stored = desk_site.root / "content" / "events" / f"{EVENT}.en.md"
    assert "Checked at 1280 px.\n\nChecked at 768 px.\n" in stored.read_text("utf-8")
    for width in (1280, 768):
        with Image.open(desk_site.root / "static" / "images" / f"foto-{width}.jpg") as image:
            assert image.size == (1600, 1200)
