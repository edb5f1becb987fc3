"""One URL builder: every address of an item in the built output is the one `comms.content.urls`
gives, whichever page, e-mail, feed or calendar carries it."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urljoin

import icalendar

from comms.content import urls
from comms.content.models import KINDS, Issue
from comms.content.site import read_site
from comms.content.urls import Urls
from comms.core.config import load_config
from comms.publish.build import collect
from comms.publish.feed_state import issue_is_public
from comms.publish.producer import Build
from comms.publish.state import FileState

_ABSOLUTE = re.compile(r"https?://[^\s\"'<>\\]+")
_RELATIVE = re.compile(r'\s(?:href|src)="([^"]+)"')


def _links(path: str, data: bytes, site_urls: Urls) -> set[str]:
    """Every absolute URL a built file mentions; relative links resolved against its page."""
    if path.endswith(".ics"):
        text = "\n".join(
            str(component.get(key, ""))
            for component in icalendar.Calendar.from_ical(data).walk()
            for key in ("URL", "DESCRIPTION", "SOURCE")
        )
    else:
        # Feed content is HTML escaped once more inside XML; unescape until it is plain.
        text = data.decode("utf-8")
        for _ in range(3):
            text = html.unescape(text)
    found = set(_ABSOLUTE.findall(text))
    if path.endswith(".html"):
        page = site_urls.absolute(path.removesuffix(urls.PAGE))
        found |= {urljoin(page, link) for link in _RELATIVE.findall(text) if ":" not in link}
    return found


def test_every_item_url_in_the_output_comes_from_the_builder(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    site, _ = read_site(config)
    files = collect(Build(config, site, FileState(config.root)))
    site_urls = Urls(config)
    home = site_urls.home()
    expected: set[str] = set()
    for item in site.all_items():
        expected.add(site_urls.item(item))
        if item.kind == "event":
            expected.add(site_urls.event_calendar(item))
        if not isinstance(item, Issue) or issue_is_public(item, site, config.now()):
            assert urls.page_path(item) + urls.PAGE in files, item.uid
    for item in site.events.values():
        assert urls.event_calendar_path(item.slug) in files
    texts = {
        p: d for p, d in files.items() if p.endswith((".html", ".txt", ".xml", ".json", ".ics"))
    }
    found = set().union(*(_links(path, data, site_urls) for path, data in texts.items()))
    in_site = {url.split("#")[0] for url in found if url.startswith(home)}
    folders = tuple(f"{home}{kind.folder}/" for kind in KINDS.values())
    item_links = {
        url
        for url in in_site
        if url.startswith(folders)
        and url not in {f"{home}{urls.list_path(k)}" for k in KINDS}
        and "/region/" not in url
        and url.rsplit("/", 1)[-1] not in urls.FEED_NAMES.values()
    }
    assert len(item_links) > 20
    assert item_links - expected == set()
    # The public copies of sent issues link to the sign-up page instead of personal pages.
    assert site_urls.subscribe() in in_site
    assert site_urls.calendar() in in_site and site_urls.feed("", "rss") in in_site


def test_paths_and_urls() -> None:
    config = load_config(Path(__file__).resolve().parent.parent / "comms.toml", environ={})
    site_urls = Urls(config)
    base = "https://newsletter.example.org/"
    assert urls.item_path("event", "x") == "events/x/"
    assert urls.event_calendar_path("x") == "events/x.ics"
    assert urls.calendar_path() == "events.ics" and urls.calendar_path("r") == "events-r.ics"
    assert urls.feed_folder() == "" and urls.feed_folder("issue") == "issues/"
    assert urls.feed_folder(region="r") == "events/region/r/"
    assert urls.feed_path("events/", "json") == "events/feed.json"
    assert urls.relative("events/x.ics", "events/x/") == "../x.ics"
    assert urls.relative("issues/", "events/x/") == "../../issues/"
    assert urls.link("/img/a.jpg", "../../") == "../../img/a.jpg"
    assert urls.link("https://e.org/a.jpg", "../") == "https://e.org/a.jpg"
    assert site_urls.confirm("T") == base + "confirm/T"
    assert site_urls.unsubscribe() == base + "unsubscribe/"
    assert site_urls.preferences("T") == base + "preferences/T"
    assert site_urls.asset("/i.jpg") == base + "i.jpg"
    assert urls.webcal(site_urls.calendar("r")) == "webcal://newsletter.example.org/events-r.ics"
