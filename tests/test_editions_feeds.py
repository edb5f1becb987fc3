"""Feeds, calendars and archive pages per edition: `/<lang>/…`, valid, in their language."""

from __future__ import annotations

import json

import feedparser
import icalendar
import jsonschema
import pytest
from lxml import etree

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.build import collect
from comms.publish.producer import Build, Files
from comms.publish.state import FileState

from .conftest import copy_sample
from .test_feeds import ATOM_RNG, JSON_FEED_SCHEMA

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
BASE = "https://newsletter.example.org/"
EDITIONS = ("en", "de-x-ls", "ar")
EVENT = "2019-06-21-regionalkonferenz-lueneburg"


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
            assert entry.link.startswith(BASE + folder)
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
    # Untranslated: the German text, labelled German, with English labels around it.
    other = icalendar.Calendar.from_ical(files["en/events/2019-08-24-film-workshop-uelzen.ics"])
    untranslated = other.walk("VEVENT")[0]
    assert untranslated["SUMMARY"].params["LANGUAGE"] == "de"
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
    assert "ar/issues/2020-02-newsletter/email.html" in files


def test_an_untranslated_item_in_an_edition_points_search_engines_to_the_original(
    files: dict[str, bytes],
) -> None:
    page = files["en/practices/stuhlbau-projekt-lamspringe/index.html"].decode()
    assert f'<link rel="canonical" href="{BASE}practices/stuhlbau-projekt-lamspringe/">' in page
    assert '"inLanguage": "de"' in page
    assert '<article lang="de">' in page
    assert "Not translated yet – shown in the original language (Deutsch)." in page
