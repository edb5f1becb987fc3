"""Editions in a real browser: the right-to-left and Leichte Sprache mail and archive pages at 600
and 375 px, with axe-core (WCAG 2 A/AA)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from comms.content.site import read_site
from comms.content.translation_files import digest, with_digest
from comms.core.config import load_config
from comms.publish.build import collect, write_output
from comms.publish.producer import Build
from comms.publish.state import FileState

from .conftest import copy_sample
from .test_browser import SITE_HOST, _open, _violations, browser, serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]
__all__ = ["browser"]  # the shared chromium fixture

#: Test data for the right-to-left edition: a short Arabic issue, not a checked translation.
ARABIC = Path(__file__).resolve().parent / "editions" / "2020-02-newsletter.ar.md"
ISSUE = "issues/2020-02-newsletter/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample site plus the Arabic test issue, built and served on 127.0.0.1."""
    root = copy_sample(tmp_path_factory.mktemp("sample"))
    issues = root / "content" / "issues"
    target = issues / ARABIC.name
    shutil.copy(ARABIC, target)
    stamp = digest(issues / "2020-02-newsletter.md")
    target.write_text(with_digest(target.read_text("utf-8"), stamp), "utf-8")
    config = load_config(root / "comms.toml")
    site, problems = read_site(config)
    assert problems == []
    # As after its send: before its send_at (after the reference date) 2020-02 is not public.
    site.sent = frozenset({"2020-02-newsletter"})
    out = tmp_path_factory.mktemp("site") / "public"
    write_output(out, collect(Build(config, site, FileState(config.root))))
    with serve(out) as url:
        yield url


def pages(browser: Browser, url: str) -> Iterator[Page]:
    """The page at 600 and 375 px: no horizontal scrolling, no axe violations, nothing
    third-party (checked after the caller looked at it)."""
    hosts: set[str] = set()
    for width in (600, 375):
        page = _open(browser, url, width, hosts)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"horizontal scrolling at {width} px: {scroll}"
        yield page
        assert _violations(page) == ""
        page.close()
    assert hosts <= {"127.0.0.1", SITE_HOST}


@pytest.mark.parametrize("path", [f"ar/{ISSUE}email.html", f"ar/{ISSUE}"])
def test_right_to_left_mail_and_page(browser: Browser, server: str, path: str) -> None:
    for page in pages(browser, server + path):
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert page.evaluate("document.documentElement.lang") == "ar"
        heading = page.locator("h1").first
        assert "المؤتمر المتخصص" in heading.inner_text()
        # Mirrored: the text starts at the right edge.
        style = "e => [getComputedStyle(e).direction, getComputedStyle(e).textAlign]"
        direction, align = heading.evaluate(style)
        assert direction == "rtl" and align in ("right", "start")
        box = heading.bounding_box()
        width = page.viewport_size["width"] if page.viewport_size else 0
        assert box is not None and box["x"] + box["width"] > width / 2
        # An item without an Arabic translation is shown in German and marked as such.
        assert page.locator('[lang="de"]').count() > 0


@pytest.mark.parametrize("path", [f"de-x-ls/{ISSUE}email.html", f"de-x-ls/{ISSUE}"])
def test_leichte_sprache_has_larger_type(browser: Browser, server: str, path: str) -> None:
    for page in pages(browser, server + path):
        assert page.evaluate("document.documentElement.lang") == "de-x-ls"
        first = page.locator("p", has_text="Liebe Leserinnen und Leser").first
        size = first.evaluate("p => parseFloat(getComputedStyle(p).fontSize)")
        assert size >= 20
