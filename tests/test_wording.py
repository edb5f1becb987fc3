"""One wording of dates and labels: feeds, calendars, e-mails and web pages all word an event's
date through `Formatter`, and feed labels come from the catalogs of `site.language`."""

from __future__ import annotations

import json
from pathlib import Path

import icalendar
import pytest

from comms.content import urls
from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.build import collect
from comms.publish.producer import Build
from comms.publish.render import render_issue
from comms.publish.state import FileState
from comms.publish.templating import Formatter

MULTI_DAY = [
    "2019-06-28-tag-der-niedersachsen-wilhelmshaven",  # all day, three days
    "2019-08-24-film-workshop-uelzen",  # with times, over two days
]
EVENT = "2020-04-16-schwerpunktkonferenz-sprachliche-und-berufliche-integration"


@pytest.mark.parametrize("slug", MULTI_DAY)
def test_a_multi_day_event_reads_the_same_in_feed_mail_and_web(site_copy: Path, slug: str) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    site, _ = read_site(config)
    files = collect(Build(config, site, FileState(config.root)))
    event = site.events[slug]
    when = Formatter(config).event_when(event)
    assert "\u2009–\u2009" in when  # a period, worded with the locale's interval pattern
    feed = json.loads(files["feed.json"])
    entries = [e["content_html"] for e in feed["items"] if slug in e["content_html"]]
    assert entries and all(when in html for html in entries)
    web = files[urls.page_path(event) + urls.PAGE].decode("utf-8")
    assert when in web
    issue = next(i for i in site.issues.values() if event in site.issue_events(i, config.tz))
    rendered = render_issue(config, site, issue)
    assert when in rendered.text and when in rendered.html


def test_english_feeds_and_calendars(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml", overrides={"site": {"language": "en"}})
    assert config.settings.site.language == "en"
    site, _ = read_site(config)
    files = collect(Build(config, site, FileState(config.root)))
    name = config.settings.site.name
    events = json.loads(files["events/feed.json"])
    assert events["title"] == f"{name}: Events"
    assert events["description"] == f"Upcoming events of the alliance “{name}”"
    assert events["language"] == "en"
    entry = next(e for e in events["items"] if EVENT in e["url"])
    html = entry["content_html"].split("</p>")[0]  # the facts; the text itself is German
    for label in ("Date", "Place", "Organiser", "Registration"):
        assert f"<strong>{label}:</strong>" in html
    assert "Thursday, 16 April 2020, 09:30–16:30" in html
    assert "Event" in entry["tags"]
    for german in ("Termin", "Ort:", "Veranstalter", "Anmeldung", "Donnerstag", "Bündnisses"):
        assert german not in html + events["title"] + events["description"]
    awards = json.loads(files["awards/feed.json"])
    assert awards["title"] == f"{name}: Special prizes"
    assert "<strong>Prize money:</strong> 6,000 euros" in awards["items"][0]["content_html"]
    cancelled = json.loads(files["feed.json"])
    assert any(i["title"].startswith("Postponed: ") for i in cancelled["items"])
    calendar = icalendar.Calendar.from_ical(files[urls.calendar_path()])
    assert str(calendar["X-WR-CALNAME"]) == f"{name}: Events"
    assert str(calendar["PRODID"]).endswith("//EN")
    vevent = icalendar.Calendar.from_ical(files[urls.event_calendar_path(EVENT)]).walk("VEVENT")[0]
    description = str(vevent["DESCRIPTION"])
    assert "Organiser: " in description and "More: " in description
