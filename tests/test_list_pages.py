"""Long lists are paged: every item on exactly one page of its list, in order, with rel
links and a labelled navigation between the pages, worded in each edition's language."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish import archive
from comms.publish.build import collect, write_output
from comms.publish.producer import Build, Files
from comms.publish.state import FileState

from .deskkit import violations
from .test_browser import _open, serve

pytestmark = pytest.mark.slow

SIZE = 5


@pytest.fixture
def files(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Files:
    """The sample's build with lists paged at `SIZE` entries."""
    monkeypatch.setattr(archive, "PAGE_SIZE", SIZE)
    config = load_config(site_copy / "comms.toml", environ={})
    site, _ = read_site(config)
    return collect(Build(config, site, FileState(config.root)))


def _pages(files: Files, folder: str) -> list[str]:
    """The pages of a list in order: `events/index.html`, `events/page/2/index.html` …"""
    first = f"{folder}/index.html"
    later = sorted(
        (p for p in files if re.fullmatch(rf"{folder}/page/\d+/index\.html", p)),
        key=lambda p: int(p.split("/")[-2]),
    )
    return [first, *later]


def _linked(html: str, folder: str) -> list[str]:
    """The slugs of the items of `folder` a list page links to, in order (teasers' headings
    and past events' lines; not their calendar links)."""
    return re.findall(rf'<a href="(?:\.\./)+{folder}/([a-z0-9-]+)/"', html)


def test_every_item_is_on_one_page_of_its_list_in_order(files: Files) -> None:
    events = _pages(files, "events")
    assert len(events) == 5  # 23 events in the sample, 5 a page
    seen: list[str] = []
    for path in events:
        html = files[path].decode()
        linked = list(dict.fromkeys(_linked(html, "events")))
        assert 0 < len(linked) <= SIZE
        seen.extend(linked)
    slugs = {
        path.split("/")[1] for path in files if re.fullmatch(r"events/[^/]+/index\.html", path)
    }
    slugs.discard("page")
    assert sorted(seen) == sorted(slugs) and len(seen) == len(set(seen))
    first = files[events[0]].decode()
    assert 'id="upcoming"' in first  # upcoming events lead, then past ones
    last = files[events[-1]].decode()
    assert 'id="upcoming"' not in last and 'id="past"' in last
    practices = _pages(files, "practices")
    assert len(practices) == 2  # 7 practices


def test_pages_link_each_other_with_rel_links_and_a_labelled_navigation(files: Files) -> None:
    page = files["events/page/2/index.html"].decode()
    assert "<title>Veranstaltungen – Seite 2 von 5 – Niedersachsen packt an</title>" in page
    assert '<link rel="canonical" href="https://newsletter.example.org/events/page/2/">' in page
    assert '<link rel="prev" href="../../../events/">' in page
    assert '<link rel="next" href="../../../events/page/3/">' in page
    nav = page[page.index('<nav class="pages"') :]
    nav = nav[: nav.index("</nav>")]
    assert 'aria-label="Seiten"' in nav
    assert '<a href="../../../events/" rel="prev">Vorige Seite</a>' in nav
    assert "<li>Seite 2 von 5</li>" in nav
    assert '<a href="../../../events/page/3/" rel="next">Nächste Seite</a>' in nav
    # The first page has no previous one, the last no next one.
    first = files["events/index.html"].decode()
    assert 'rel="prev"' not in first and "<title>Veranstaltungen – Niedersachsen" in first
    last = files["events/page/5/index.html"].decode()
    assert 'rel="next"' not in last and "Nächste Seite" not in last
    # Every link between pages leads to a page the build makes.
    for path in _pages(files, "events"):
        folder = posixpath.dirname(path)
        for href in re.findall(r'href="((?:\.\./)+events/[^"]*/)"', files[path].decode()):
            target = posixpath.normpath(posixpath.join(folder, href)) + "/index.html"
            assert target in files, (path, href)


def test_an_edition_pages_its_lists_in_its_language(files: Files) -> None:
    page = files["en/events/page/2/index.html"].decode()
    assert "<title>Events – Page 2 of 5 – " in page
    assert 'aria-label="Pages"' in page and "Previous page" in page and "Next page" in page
    arabic = files["ar/practices/page/2/index.html"].decode()
    assert "الصفحة 2 من 2" in arabic and "الصفحة السابقة" in arabic
    # Its alternates name the same page in every edition, and each exists.
    for href in re.findall(r'<link rel="alternate" hreflang="[^"]+" href="([^"]+)"', page):
        path = href.removeprefix("https://newsletter.example.org/") + "index.html"
        assert path.endswith("events/page/2/index.html") and path in files


@pytest.mark.xdist_group("chromium")
def test_a_later_page_passes_axe_and_its_navigation_works_by_keyboard(
    site_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser: Browser
) -> None:
    monkeypatch.setattr(archive, "PAGE_SIZE", SIZE)
    config = load_config(site_copy / "comms.toml", environ={})
    site, _ = read_site(config)
    out = tmp_path / "public"
    write_output(out, collect(Build(config, site, FileState(config.root))))
    with serve(out) as server:
        for path, scheme, width in (
            ("events/page/2/", "light", 1024),
            ("ar/practices/page/2/", "dark", 375),
        ):
            hosts: set[str] = set()
            page = _open(browser, server + path, width, hosts, scheme)
            assert violations(page) == "", (path, scheme)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
            page.close()
        # The last link of the page navigation is "next": a keyboard reaches and follows it.
        page = _open(browser, server + "events/page/2/", 1024, set())
        nav = page.get_by_role("navigation", name="Seiten")
        nav.get_by_role("link", name="Nächste Seite").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/events/page/3/")
        assert page.title().startswith("Veranstaltungen – Seite 3 von 5")
        page.close()
