"""Feeds and calendars: golden files, validators (feedparser, RELAX NG, JSON Schema, icalendar)."""

from __future__ import annotations

import email.utils
import json
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import icalendar
import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from comms.cli import cli, main
from comms.content.models import Site
from comms.content.reader import read_content
from comms.content.urls import Urls, webcal
from comms.core.config import Config, load_config
from comms.publish.feed_entry import clean
from comms.publish.feeds import FH_NS, feed_files
from comms.publish.producer import Build, Files
from comms.publish.state import FileState

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "feeds"
ATOM_RNG = etree.RelaxNG(etree.parse(str(HERE / "schemas" / "atom.rng")))
JSON_FEED_SCHEMA = json.loads((HERE / "schemas" / "jsonfeed-1.1.schema.json").read_text("utf-8"))
ATOM = "{http://www.w3.org/2005/Atom}"
EVENT = "2020-04-16-schwerpunktkonferenz-sprachliche-und-berufliche-integration"


def item_id(kind: str, slug: str) -> str:
    """The id the sample config gives an item (computed independently of comms)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'https://newsletter.example.org/{kind}/{slug}')}"


EVENT_ID = item_id("event", EVENT)


def load(root: Path, **overrides: object) -> tuple[Config, Site]:
    config = load_config(root / "comms.toml", overrides=overrides, environ={})
    settings_ = config.settings
    site, errors = read_content(config.content_dir, config.tz, settings_.regions, settings_.topics)
    assert errors == []
    return config, site


def build(root: Path, **overrides: object) -> Files:
    config, site = load(root, **overrides)
    return feed_files(Build(config, site, FileState(config.root)))


def edit(root: Path, slug: str, old: str, new: str) -> None:
    path = root / "content" / "events" / f"{slug}.md"
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")


def vevent(data: bytes) -> icalendar.Event:
    events = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert len(events) == 1 and isinstance(events[0], icalendar.Event)
    return events[0]


def when(component: icalendar.Component, name: str) -> datetime:
    """A date-time property's value (icalendar types `component[name]` as any property)."""
    value = component.decoded(name)
    assert isinstance(value, datetime)
    return value


@pytest.fixture
def files(site_copy: Path) -> Files:
    return build(site_copy)


def test_golden_files(files: dict[str, bytes], pytestconfig: pytest.Config) -> None:
    if pytestconfig.getoption("--update-golden"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for path, data in files.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_bytes(data)
    stored = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert stored == set(files), "run pytest --update-golden and review the diff"
    for path, data in files.items():
        assert (GOLDEN / path).read_bytes() == data, f"{path} differs from its golden file"


def test_layout_and_fixed_points(files: dict[str, bytes]) -> None:
    for name in ("feed.xml", "atom.xml", "feed.json", "events.ics"):
        assert name in files
    for folder in ("events/", "issues/", "practices/", "awards/", "events/region/lueneburg/"):
        assert {folder + n for n in ("feed.xml", "atom.xml", "feed.json")} <= set(files)
    assert {f"events-{r}.ics" for r in ("landesweit", "lueneburg", "weser-ems")} <= set(files)
    assert f"events/{EVENT}.ics" in files
    assert len([p for p in files if p.startswith("events/") and p.endswith(".ics")]) == 23


def test_fresh_clones_give_identical_bytes(tmp_path: Path, files: dict[str, bytes]) -> None:
    other = tmp_path / "other"
    shutil.copytree(HERE.parent / "content", other / "content")
    shutil.copy(HERE.parent / "comms.toml", other / "comms.toml")
    assert build(other) == files
    assert build(other) == files  # with the state the first build recorded


def test_rss_and_atom_parse_cleanly(files: dict[str, bytes]) -> None:
    xml = [p for p in files if p.endswith(("feed.xml", "atom.xml"))]
    assert len(xml) == 2 * 10
    for path in xml:
        parsed = feedparser.parse(files[path])
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.feed.language == "de"
        for entry in parsed.entries:
            assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry.id)
            assert entry.link.startswith("https://newsletter.example.org/")
            assert entry.author_detail.name == "Bündnis „Niedersachsen packt an“"
            assert entry.content[0].type == "text/html"


def test_rss_channel_and_items(files: dict[str, bytes]) -> None:
    root = etree.fromstring(files["feed.xml"])
    channel = root.find("channel")
    assert channel is not None
    self_link = channel.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == "https://newsletter.example.org/feed.xml"
    assert self_link.get("type") == "application/rss+xml"
    items = channel.findall("item")
    assert items
    for item in items:
        guid = item.find("guid")
        assert guid is not None and guid.get("isPermaLink") == "false"
        assert item.findtext("author") == "info@example.org (Bündnis „Niedersachsen packt an“)"
        when = email.utils.parsedate_to_datetime(item.findtext("pubDate") or "")
        assert when.tzinfo is not None
    dates = [email.utils.parsedate_to_datetime(i.findtext("pubDate") or "") for i in items]
    assert dates == sorted(dates, reverse=True)


def test_atom_is_valid_rfc4287(files: dict[str, bytes]) -> None:
    for path in (p for p in files if p.endswith("atom.xml")):
        doc = etree.fromstring(files[path])
        assert ATOM_RNG.validate(doc), (path, ATOM_RNG.error_log.last_error)
        # The schema's Schematron rules: an author, and a link or content in every entry.
        assert doc.find(f"{ATOM}author/{ATOM}name") is not None
        for entry in doc.iterfind(f"{ATOM}entry"):
            assert entry.find(f"{ATOM}content[@type='html']") is not None
            assert entry.find(f"{ATOM}link") is not None
        self_link = doc.find(f"{ATOM}link[@rel='self']")
        assert self_link is not None
        assert self_link.get("href") == "https://newsletter.example.org/" + path
        assert doc.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"


def test_upcoming_event_feeds_are_complete(files: dict[str, bytes]) -> None:
    for path in ("events/atom.xml", "events/feed.xml", "events/region/weser-ems/atom.xml"):
        assert etree.fromstring(files[path]).find(f".//{{{FH_NS}}}complete") is not None
    for path in ("atom.xml", "feed.xml", "issues/atom.xml"):
        assert etree.fromstring(files[path]).find(f".//{{{FH_NS}}}complete") is None
    titles = [e.title for e in feedparser.parse(files["events/atom.xml"]).entries]
    assert titles[0] == "Verschoben: FAQ-Workshop „Unternehmen aktiv ansprechen“"
    assert len(titles) == 4  # the events after the reference date 2020-01-15


def test_json_feeds_match_the_schema(files: dict[str, bytes]) -> None:
    for path in (p for p in files if p.endswith("feed.json")):
        feed = json.loads(files[path])
        jsonschema.validate(feed, JSON_FEED_SCHEMA)
        assert feed["feed_url"] == "https://newsletter.example.org/" + path
        assert feed["language"] == "de"
        ids = [item["id"] for item in feed["items"]]
        assert len(ids) == len(set(ids))
        for item in feed["items"]:
            assert datetime.fromisoformat(item["date_published"]).tzinfo is not None
            assert item["authors"] == [{"name": "Bündnis „Niedersachsen packt an“"}]


def test_only_published_items_appear(files: dict[str, bytes]) -> None:
    ids = {item["id"] for item in json.loads(files["feed.json"])["items"]}
    all_issues = {
        item_id("issue", slug): slug
        for slug in ("2019-07-newsletter", "2019-11-newsletter", "2020-02-newsletter",
                     "2020-04-newsletter")
    }  # fmt: skip
    issues = {all_issues[i] for i in ids if i in all_issues}
    # 2020-02 is ready but sent on 4 February, 2020-04 is a draft; "now" is 2020-01-15.
    assert issues == {"2019-07-newsletter", "2019-11-newsletter"}
    assert len(json.loads(files["feed.json"])["items"]) == 23 + 3 + 7 + 2  # events, awards …


def test_the_same_id_everywhere(files: dict[str, bytes]) -> None:
    in_json = {item["id"] for item in json.loads(files["events/feed.json"])["items"]}
    in_atom = {e.id for e in feedparser.parse(files["events/atom.xml"]).entries}
    in_rss = {e.id for e in feedparser.parse(files["events/feed.xml"]).entries}
    assert EVENT_ID in in_json and in_json == in_atom == in_rss
    assert str(vevent(files[f"events/{EVENT}.ics"])["UID"]) == EVENT_ID


def test_hubs_are_advertised(site_copy: Path) -> None:
    hub = "https://hub.example.org/"
    files = build(site_copy, feeds={"hubs": [hub]})
    rss = etree.fromstring(files["events/feed.xml"])
    assert [link.get("href") for link in rss.iter(f"{ATOM}link") if link.get("rel") == "hub"] == [
        hub
    ]
    atom = etree.fromstring(files["atom.xml"])
    assert atom.find(f"{ATOM}link[@rel='hub']").get("href") == hub
    assert json.loads(files["feed.json"])["hubs"] == [{"type": "WebSub", "url": hub}]


def test_calendars_follow_rfc5545(files: dict[str, bytes]) -> None:
    for path in (p for p in files if p.endswith(".ics")):
        data = files[path]
        assert b"\n" not in data.replace(b"\r\n", b"")
        for line in data.split(b"\r\n"):
            assert len(line) <= 75, (path, line)
            line.decode("utf-8")  # folding never splits a character
        cal = icalendar.Calendar.from_ical(data)
        assert cal.get_missing_tzids() == set()
        assert str(cal["METHOD"]) == "PUBLISH" and str(cal["VERSION"]) == "2.0"
        assert cal.subcomponents, "RFC 5545: a calendar has at least one component"
        for event in cal.walk("VEVENT"):
            slug = str(event["URL"]).rstrip("/").rsplit("/", 1)[-1]
            assert str(event["UID"]) == item_id("event", slug)
            assert (
                event["DTSTAMP"].to_ical()
                == when(event, "DTSTAMP").strftime("%Y%m%dT%H%M%SZ").encode()
            )  # UTC
            assert when(event, "DTSTAMP") == when(event, "LAST-MODIFIED")


def test_calendar_details(files: dict[str, bytes]) -> None:
    timed = vevent(files[f"events/{EVENT}.ics"])
    assert timed["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert when(timed, "DTSTART").isoformat() == "2020-04-16T09:30:00+02:00"
    assert str(timed["STATUS"]) == "CONFIRMED" and timed["SEQUENCE"] == 0
    assert str(timed["LOCATION"]) == "Tagungszentrum am Maschpark, Parkstraße 12, 30159 Hannover"
    assert (
        b"DTSTART;VALUE=DATE:20180620\r\nDTEND;VALUE=DATE:20180621\r\n"
        in files["events/2018-06-20-weltfluechtlingstag-friedland.ics"]
    )
    postponed = vevent(files["events/2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen.ics"])
    assert str(postponed["STATUS"]) == "TENTATIVE"
    recent = icalendar.Calendar.from_ical(files["events.ics"]).walk("VEVENT")
    # Upcoming events and those that ended in the 180 days before 2020-01-15.
    assert [when(e, "DTSTART").date().isoformat() for e in recent] == [
        "2019-08-24",
        "2019-09-14",
        "2019-10-22",
        "2020-03-25",
        "2020-04-16",
        "2020-07-10",
        "2020-11-30",
    ]
    assert webcal("https://newsletter.example.org/events.ics") == (
        "webcal://newsletter.example.org/events.ics"
    )


def test_an_edit_bumps_sequence_and_last_modified_but_keeps_the_id(site_copy: Path) -> None:
    before = build(site_copy)
    edit(site_copy, EVENT, "status: planned", "status: cancelled")
    config_now = datetime(2020, 1, 14, 23, 0, tzinfo=UTC)  # reference_date 2020-01-15, Berlin
    after = build(site_copy)
    event = vevent(after[f"events/{EVENT}.ics"])
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["SEQUENCE"] == 1
    assert when(event, "LAST-MODIFIED") == config_now == when(event, "DTSTAMP")
    assert str(event["UID"]) == EVENT_ID
    assert str(event["SUMMARY"]).startswith("Abgesagt: ")
    entry = next(e for e in feedparser.parse(after["events/atom.xml"]).entries if e.id == EVENT_ID)
    assert entry.title.startswith("Abgesagt: ")
    assert datetime.fromisoformat(entry.updated) == config_now
    assert "Diese Veranstaltung fällt aus." in entry.content[0].value
    changed = {p for p in after if after[p] != before.get(p)}
    assert f"events/{EVENT}.ics" in changed and "practices/feed.xml" not in changed
    assert build(site_copy) == after  # seen once: the next build changes nothing
    edit(site_copy, EVENT, "Die Teilnahme ist kostenfrei.", "Die Teilnahme kostet nichts.")
    assert vevent(build(site_copy)[f"events/{EVENT}.ics"])["SEQUENCE"] == 2


_WEIRD = st.text(
    alphabet=st.sampled_from(["\x00", "\x0b", "\x1f", "\ud800", "\ufffe", "a", "ä", "&", "<", "„"]),
    min_size=1,
    max_size=20,
)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=_WEIRD)
def test_fuzzed_titles_still_give_valid_feeds(tmp_path: Path, title: str) -> None:
    config, site = load(HERE.parent)
    config = Config(settings=config.settings, root=tmp_path, path=None)
    event = site.events[EVENT]
    site.events = {EVENT: event.model_copy(update={"title": "T" + title})}
    site.issues, site.practices, site.awards = {}, {}, {}
    files = feed_files(Build(config, site, FileState(config.root)))
    for path in ("atom.xml", "events/atom.xml"):
        assert ATOM_RNG.validate(etree.fromstring(files[path]))
    for path in ("feed.xml", "events/feed.xml"):
        assert feedparser.parse(files[path]).bozo == 0
    jsonschema.validate(json.loads(files["feed.json"]), JSON_FEED_SCHEMA)
    summary = str(vevent(files[f"events/{EVENT}.ics"])["SUMMARY"])
    assert summary.startswith("T") and "\x00" not in summary and "\ud800" not in summary


def test_site_relative_links_become_absolute() -> None:
    config, _ = load(HERE.parent)
    html = '<a href="/issues/x/">a</a> <img src="/i.jpg" alt="b"> <a href="https://e.org/">c</a>'
    assert Urls(config).absolute_links(html) == (
        '<a href="https://newsletter.example.org/issues/x/">a</a> '
        '<img src="https://newsletter.example.org/i.jpg" alt="b"> <a href="https://e.org/">c</a>'
    )


@pytest.mark.parametrize(
    ("start", "local", "utc"),
    [
        ("2025-03-30 01:30", "20250330T013000", "2025-03-30T00:30:00+00:00"),
        ("2025-03-30 03:30", "20250330T033000", "2025-03-30T01:30:00+00:00"),
        ("2025-10-26 01:30", "20251026T013000", "2025-10-25T23:30:00+00:00"),
        ("2025-10-26 03:30", "20251026T033000", "2025-10-26T02:30:00+00:00"),
    ],
)
def test_events_on_dst_days(site_copy: Path, start: str, local: str, utc: str) -> None:
    path = site_copy / "content" / "events" / "dst.md"
    path.write_text(
        f"---\ntitle: Umstellung\nstart: {start}\nlocation: {{name: Rathaus, city: Celle}}\n"
        "region: lueneburg\norganiser: Bündnis\nsummary: Kurz.\npublished: 2020-01-01\n---\n",
        encoding="utf-8",
    )
    files = build(site_copy)
    data = files["events/dst.ics"]
    assert f"DTSTART;TZID=Europe/Berlin:{local}\r\n".encode() in data
    cal = icalendar.Calendar.from_ical(data)
    assert cal.get_missing_tzids() == set()
    assert when(cal.walk("VEVENT")[0], "DTSTART").astimezone(UTC).isoformat() == utc
    assert b"DTSTART:20250330T030000\r\n" in data  # the VTIMEZONE covers 2025's change
    hh_mm = f"{local[9:11]}:{local[11:13]}\u00a0Uhr"
    html = next(
        i
        for i in json.loads(files["events/feed.json"])["items"]
        if i["id"] == item_id("event", "dst")
    )
    assert hh_mm in html["content_html"]


def test_a_broken_state_file_is_reported(
    site_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = site_copy / "var" / "feeds-state.json"
    state.parent.mkdir()
    state.write_text("{oops", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(site_copy / "comms.toml"), "refresh"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {state}: cannot read the feed state (")
    assert err.endswith("); fix or remove it\n")
    assert not (site_copy / "public").exists()


@pytest.mark.database
def test_demo_lists_feed_and_calendar_addresses(site_copy: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(site_copy / "comms.toml"), "demo"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("Feeds (RSS, Atom, JSON Feed):")
    assert lines[start + 1] == (
        "  https://newsletter.example.org/feed.xml  https://newsletter.example.org/atom.xml"
        "  https://newsletter.example.org/feed.json"
    )
    calendars = lines.index("Calendars:")
    assert lines[calendars : calendars + 4] == [
        "Calendars:",
        "  webcal://newsletter.example.org/events.ics",
        "  per region: webcal://newsletter.example.org/events-<region>.ics",
        "  per event: webcal://newsletter.example.org/events/<slug>.ics",
    ]


@pytest.mark.parametrize(
    ("end", "dtend", "when"),
    [
        ("2020-06-01", "20200602", "Montag, 1. Juni 2020"),
        ("2020-06-03", "20200604", "Mo., 1.\u2009–\u2009Mi., 3. Juni 2020"),
        ("2020-06-03 18:00", "20200604", "Mo., 1.\u2009–\u2009Mi., 3. Juni 2020"),
    ],
)
def test_all_day_events_end_after_their_last_day(
    site_copy: Path, end: str, dtend: str, when: str
) -> None:
    path = site_copy / "content" / "events" / "tage.md"
    path.write_text(
        f"---\ntitle: Aktionstage\nstart: 2020-06-01\nend: {end}\n"
        "location: {name: Rathaus, city: Celle}\nregion: lueneburg\norganiser: Bündnis\n"
        "summary: Kurz.\npublished: 2020-01-01\n---\n",
        encoding="utf-8",
    )
    files = build(site_copy)
    assert (
        f"DTSTART;VALUE=DATE:20200601\r\nDTEND;VALUE=DATE:{dtend}\r\n".encode()
        in files["events/tage.ics"]
    )
    item = next(
        i
        for i in json.loads(files["events/feed.json"])["items"]
        if i["id"] == item_id("event", "tage")
    )
    assert f"<strong>Termin:</strong> {when}<br>" in item["content_html"]


def test_the_build_time_never_shows(
    tmp_path: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two builds at different hours of the reference day, each from a fresh clone: same bytes.
    for hour in (9, 17):
        moment = datetime(2020, 1, 15, hour, 41, 7, tzinfo=UTC)
        monkeypatch.setattr(Config, "now", lambda self, m=moment: m)
        clone = tmp_path / f"clone-{hour}"
        shutil.copytree(HERE.parent / "content", clone / "content")
        shutil.copy(HERE.parent / "comms.toml", clone / "comms.toml")
        assert build(clone) == files


def test_clean_drops_exactly_what_xml_refuses() -> None:
    """Every code point at and around the edges of XML 1.0's Char ranges (section 2.2)."""

    def allowed(code: int) -> bool:
        return code in (0x9, 0xA, 0xD) or any(
            low <= code <= high
            for low, high in ((0x20, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF))
        )

    edges = (0x0, 0x9, 0xA, 0xD, 0x20, 0xD7FF, 0xE000, 0xFFFD, 0x10000, 0x10FFFF)
    for code in sorted({c + d for c in edges for d in (-1, 0, 1) if 0 <= c + d <= 0x10FFFF}):
        assert clean(f"a{chr(code)}b") == ("a" + chr(code) + "b" if allowed(code) else "ab")
