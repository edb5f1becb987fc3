"""Feeds, calendars and archive pages per edition: `/<lang>/…`, valid, in their language."""

from __future__ import annotations

import html
import json
import posixpath
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import icalendar
import jsonschema
import pytest
from lxml import etree

from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.languages import site_editions
from comms.publish.build import collect
from comms.publish.edition_build import edition_issue
from comms.publish.producer import Build, Files
from comms.publish.state import FileState

from .conftest import copy_sample
from .test_feeds import ATOM_RNG, JSON_FEED_SCHEMA

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
BASE = "https://newsletter.example.org/"
EDITIONS = ("en", "de-x-ls", "ar")
EVENT = "2019-06-21-regionalkonferenz-lueneburg"
#: Built files that link: pages, feeds, calendars, public copies of mails.
TEXTS = (".html", ".xml", ".json", ".ics", ".txt")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    config = load_config(copy_sample(tmp_path_factory.mktemp("sample")) / "comms.toml")
    site, _ = read_site(config)
    # As after its send: before its send_at (after the reference date) 2020-02 is not public.
    site.sent = frozenset({"2020-02-newsletter"})
    return collect(Build(config, site, FileState(config.root)))


@pytest.mark.parametrize("lang", EDITIONS)
def test_every_edition_has_valid_feeds_in_its_language(files: dict[str, bytes], lang: str) -> None:
    folder = f"{lang}/"
    feeds = [p for p in files if p.startswith(folder) and p.endswith(("feed.xml", "atom.xml"))]
    assert {folder + n for n in ("feed.xml", "atom.xml", "feed.json")} <= set(files)
    assert len(feeds) == 2 * 10  # as many as the site's own
    for path in feeds:
        parsed = feedparser.parse(files[path])
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.feed.language == lang
        for entry in parsed.entries:
            # A translated item's page in the edition, else the original's at the root.
            page = entry.link.removeprefix(BASE) + "index.html"
            assert page in files
            assert page.startswith(folder) or folder + page not in files
    for path in (p for p in feeds if p.endswith("atom.xml")):
        doc = etree.fromstring(files[path])
        assert ATOM_RNG.validate(doc), (path, ATOM_RNG.error_log.last_error)
        assert doc.get(XML_LANG) == lang
    rss = etree.fromstring(files[folder + "feed.xml"])
    assert rss.findtext("channel/language") == lang
    assert rss.findtext("channel/link") == BASE + folder
    feed = json.loads(files[folder + "feed.json"])
    jsonschema.validate(feed, JSON_FEED_SCHEMA)
    assert feed["language"] == lang
    assert feed["feed_url"] == BASE + folder + "feed.json"


def test_the_site_keeps_the_root_and_its_feed_ids(files: dict[str, bytes]) -> None:
    ids = {
        etree.fromstring(files[p]).findtext("{http://www.w3.org/2005/Atom}id")
        for p in ("atom.xml", "en/atom.xml", "ar/atom.xml")
    }
    assert len(ids) == 3  # every edition's feed has its own id
    assert etree.fromstring(files["atom.xml"]).get(XML_LANG) == "de"


def test_translated_items_in_the_english_feed_and_calendar(files: dict[str, bytes]) -> None:
    entries = feedparser.parse(files["en/atom.xml"]).entries
    english = {e.link: e.title for e in entries}
    assert english[f"{BASE}en/events/{EVENT}/"] == (
        'Regional conference "Immigrant Women in Society"'
    )
    event = icalendar.Calendar.from_ical(files[f"en/events/{EVENT}.ics"]).walk("VEVENT")[0]
    summary = event["SUMMARY"]
    assert str(summary) == 'Regional conference "Immigrant Women in Society"'
    assert summary.params["LANGUAGE"] == "en"
    assert event["DESCRIPTION"].params["LANGUAGE"] == "en"
    assert "Organiser: " in str(event["DESCRIPTION"])
    # Untranslated: the German text, labelled German, with English labels around it, linking
    # the original's page; no calendar file of its own in the edition.
    other = icalendar.Calendar.from_ical(files["en/events-lueneburg.ics"])
    (untranslated,) = (e for e in other.walk("VEVENT") if "film-workshop-uelzen" in str(e["URL"]))
    assert untranslated["SUMMARY"].params["LANGUAGE"] == "de"
    assert str(untranslated["URL"]) == f"{BASE}events/2019-08-24-film-workshop-uelzen/"
    assert "Organiser: " in str(untranslated["DESCRIPTION"])
    assert "en/events/2019-08-24-film-workshop-uelzen.ics" not in files
    # The site's calendars stay as they were: no LANGUAGE parameters.
    own = icalendar.Calendar.from_ical(files[f"events/{EVENT}.ics"]).walk("VEVENT")[0]
    assert "LANGUAGE" not in own["SUMMARY"].params


def test_archive_pages_per_language_with_alternates(files: dict[str, bytes]) -> None:
    page = files["en/issues/2019-07-newsletter/index.html"].decode()
    assert '<html lang="en" dir="ltr">' in page
    assert f'<link rel="alternate" hreflang="de" href="{BASE}issues/2019-07-newsletter/">' in page
    assert f'<link rel="canonical" href="{BASE}en/issues/2019-07-newsletter/">' in page
    assert 'href="../../../style.css"' in page  # the root's style sheet
    german = files["issues/2019-07-newsletter/index.html"].decode()
    assert f'hreflang="en" href="{BASE}en/issues/2019-07-newsletter/"' in german
    arabic = files["ar/index.html"].decode()
    assert '<html lang="ar" dir="rtl">' in arabic
    assert 'aria-current="page">العربية</a>' in arabic
    assert "en/style.css" not in files  # style sheet and static files only at the root
    assert "en/issues/2019-07-newsletter/email.html" in files  # translated
    assert "ar/issues/2020-02-newsletter/email.html" not in files  # not translated


def test_an_untranslated_item_has_no_page_in_an_edition_whose_lists_link_the_original(
    files: dict[str, bytes],
) -> None:
    slug = "stuhlbau-projekt-lamspringe"
    assert f"en/practices/{slug}/index.html" not in files
    assert f"practices/{slug}/index.html" in files
    listing = files["en/practices/index.html"].decode()
    assert f'<a href="../../practices/{slug}/" hreflang="de" lang="de">' in listing
    # The original's page names the editions it exists in: only its own.
    original = files[f"practices/{slug}/index.html"].decode()
    assert 'hreflang="en"' not in original
    translated = files[f"en/events/{EVENT}/index.html"].decode()
    assert f'<link rel="canonical" href="{BASE}en/events/{EVENT}/">' in translated


class _Links(HTMLParser):
    """The `href` and `src` values of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


def _site_links(path: str, body: bytes) -> list[str]:
    """The site paths a built file links to (relative links resolved from its folder)."""
    text = body.decode("utf-8")
    if not path.endswith(".html"):
        # Feeds, calendars and plain-text copies: absolute URLs (iCalendar lines unfolded).
        found = re.findall(re.escape(BASE) + r"[^\s\"'<>\\,]*", text.replace("\r\n ", ""))
        return [url.removeprefix(BASE) for url in found]
    parser = _Links()
    parser.feed(text)
    links = []
    for link in parser.found:
        if link.startswith(BASE):
            links.append(link.removeprefix(BASE))
        elif ":" not in link and not link.startswith("#"):
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), link))
            links.append("" if joined == "." else joined + ("/" if link.endswith("/") else ""))
    return links


def test_every_link_of_every_edition_leads_to_a_built_file(files: dict[str, bytes]) -> None:
    served = {"subscribe"}  # answered by `comms serve`, not built
    dead = set()
    for path in (p for p in files if p.endswith(TEXTS)):
        for link in _site_links(path, files[path]):
            target = html.unescape(link).partition("?")[0].partition("#")[0]
            page = target + "index.html" if target.endswith("/") or not target else target
            if not target.startswith("../") and target not in served and page not in files:
                dead.add((path, link))
    assert not dead


def test_an_edition_has_files_only_for_the_items_translated_into_it(
    files: dict[str, bytes],
) -> None:
    config = load_config(copy_sample(Path(tempfile.mkdtemp())) / "comms.toml")
    site, _ = read_site(config)
    for lang in EDITIONS:
        own = {uid.partition("/")[2] for uid in site.translations.get(lang, {})}
        items = {
            path.split("/")[2]
            for path in files
            if path.startswith(f"{lang}/") and path.count("/") == 3 and path.endswith(".html")
        }
        calendars = {
            path.split("/")[2].removesuffix(".ics")
            for path in files
            if path.startswith(f"{lang}/events/") and path.endswith(".ics")
        }
        assert items <= own and calendars <= own, lang
    assert "en/events/2019-08-24-film-workshop-uelzen/index.html" not in files
    assert "events/2019-08-24-film-workshop-uelzen/index.html" in files


def test_a_mail_of_an_edition_links_the_pages_that_exist() -> None:
    config = load_config(copy_sample(Path(tempfile.mkdtemp())) / "comms.toml")
    site, _ = read_site(config)
    english = site_editions(config).get("en")
    translated = edition_issue(config, site, site.issues["2019-07-newsletter"], english)
    assert translated.web_url == f"{BASE}en/issues/2019-07-newsletter/"
    assert f"{BASE}en/events/{EVENT}/" in translated.text
    untranslated = edition_issue(config, site, site.issues["2020-02-newsletter"], english)
    assert untranslated.web_url == f"{BASE}issues/2020-02-newsletter/"
    assert f"{BASE}en/" not in untranslated.text.replace(f"{BASE}en/feed", "")
