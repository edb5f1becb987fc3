"""Feeds and calendars: RSS 2.0 and Atom 1.0 (feedgen), JSON Feed 1.1, iCalendar (icalendar).

Layout under the output folder (every folder holds `feed.xml`, `atom.xml` and `feed.json`):
the root (everything published, newest first), `issues/`, `practices/`, `awards/` (newest
first), `events/` (upcoming events, a complete feed) and `events/region/<region>/`; calendars
`events.ics`, `events-<region>.ics` and `events/<slug>.ics`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from icalendar import Calendar, Timezone
from icalendar import Event as VEvent
from lxml import etree

from comms.content.models import KINDS, Event, Item, Site
from comms.core.config import Config
from comms.publish.feed_entry import entry_html, event_place, event_title, last_day
from comms.publish.feed_state import STATE_FILE, History, Stamp, is_public, stamp

#: File name → format, in every feed folder.
FEED_FILES = {"feed.xml": "rss", "atom.xml": "atom", "feed.json": "json"}
ATOM_NS = "http://www.w3.org/2005/Atom"
#: RFC 5005 feed history: `fh:complete` marks a feed that lists every current item.
FH_NS = "http://purl.org/syndication/history/1.0"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
#: `updated` of a feed with no entries: a fixed instant, so an empty feed never changes.
EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
ICS_STATUS = {"planned": "CONFIRMED", "postponed": "TENTATIVE", "cancelled": "CANCELLED"}
# XML 1.0 allows only these characters; lxml refuses the others (docs/requirements.md F9).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SITE_PATH = re.compile(r'(\s(?:href|src)=")/(?!/)')


def absolute_links(html: str, config: Config) -> str:
    """Make site-relative links (`href="/x"`) absolute: feed readers have no base URL."""
    return _SITE_PATH.sub(lambda m: m.group(1) + config.url(""), html)


def clean(text: str) -> str:
    """Drop characters XML cannot carry (C0 controls, lone surrogates, U+FFFE/FFFF)."""
    return _NOT_XML.sub("", text)


def is_feed(path: str) -> bool:
    """True for the feed files (RSS, Atom, JSON Feed) among the output paths."""
    return PurePosixPath(path).name in FEED_FILES


def webcal(url: str) -> str:
    """The `webcal://` form of a calendar URL, which calendar apps subscribe to."""
    return re.sub(r"^https?://", "webcal://", url)


@dataclass(frozen=True)
class Entry:
    """One published item as every feed and calendar shows it."""

    item: Item
    id: str
    url: str
    title: str
    summary: str
    html: str
    stamp: Stamp
    categories: tuple[tuple[str, str, str], ...]  # (scheme, term, label)


@dataclass(frozen=True)
class Channel:
    """One feed: where it lives, what it is called and which entries it lists."""

    folder: str
    name: str
    title: str
    description: str
    entries: list[Entry]
    complete: bool = False


class _Extras(BaseExtension):  # type: ignore[misc]
    """Adds what feedgen lacks: RSS hub links and RFC 5005 `fh:complete`."""

    hubs: tuple[str, ...] = ()
    complete = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS} if self.complete else {}

    def extend_rss(self, rss: etree._Element) -> etree._Element:
        channel = rss[0]
        for hub in self.hubs:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=hub, rel="hub")
        if self.complete:
            etree.SubElement(channel, f"{{{FH_NS}}}complete")
        return rss

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        if self.complete:
            etree.SubElement(feed, f"{{{FH_NS}}}complete")
        return feed


def _categories(config: Config, item: Item) -> tuple[tuple[str, str, str], ...]:
    settings = config.settings
    found = [("kind", item.kind, KINDS[item.kind].label)]
    found += [("topic", t, settings.topics.get(t, t)) for t in getattr(item, "topics", [])]
    region = getattr(item, "region", None)
    if region:
        found.append(("region", region, settings.regions.get(region, region)))
    return tuple(
        (_tag(config, f"category/{dim}"), term, clean(label)) for dim, term, label in found
    )


def _tag(config: Config, name: str) -> str:
    """A tag URI (RFC 4151) for what is not an item: a feed, a category scheme."""
    return f"tag:{config.host},2015:{name}"


def make_entry(config: Config, site: Site, item: Item, item_stamp: Stamp) -> Entry:
    """The feed view of one item: id, link, German title and HTML content with its facts."""
    title = event_title(item) if isinstance(item, Event) else str(getattr(item, "title", ""))
    return Entry(
        item=item,
        id=config.item_id(item.kind, item.slug),
        url=config.url(f"{KINDS[item.kind].folder}/{item.slug}/"),
        title=clean(title),
        summary=clean(str(getattr(item, "summary", ""))),
        html=absolute_links(clean(entry_html(config, site, item)), config),
        stamp=item_stamp,
        categories=_categories(config, item),
    )


def _feed_entry(config: Config, entry: Entry) -> FeedEntry:
    fe = FeedEntry()
    fe.id(entry.id)
    fe.title(entry.title)
    fe.link(href=entry.url)
    fe.author(name=clean(config.settings.sender.name), email=config.settings.organisation.email)
    fe.published(entry.stamp.published)
    fe.updated(entry.stamp.updated)
    fe.summary(entry.summary)
    fe.content(entry.html, type="html")
    for scheme, term, label in entry.categories:
        fe.category(term=term, scheme=scheme, label=label)
    return fe


def _updated(channel: Channel) -> datetime:
    return max((e.stamp.updated for e in channel.entries), default=EPOCH)


def _generator(config: Config, channel: Channel, fmt: str, cache: dict[str, FeedEntry]) -> bytes:
    settings = config.settings
    self_url = config.url(channel.folder + ("feed.xml" if fmt == "rss" else "atom.xml"))
    fg = FeedGenerator()
    fg.register_extension("comms", _Extras, None)
    fg.comms.hubs = tuple(settings.feeds.hubs)
    fg.comms.complete = channel.complete
    fg.id(_tag(config, f"feed/{channel.name}"))
    fg.title(clean(channel.title))
    fg.description(clean(channel.description))
    fg.subtitle(clean(channel.description))
    fg.language(settings.site.language)
    fg.author(name=clean(settings.sender.name), email=settings.organisation.email)
    fg.generator("comms")
    fg.updated(_updated(channel))
    media = "application/rss+xml" if fmt == "rss" else "application/atom+xml"
    fg.link(href=self_url, rel="self", type=media)
    if fmt == "atom":
        for hub in settings.feeds.hubs:
            fg.link(href=hub, rel="hub")
    # feedgen takes the last link as the RSS channel link: the site itself.
    fg.link(href=config.url(""), rel="alternate", type="text/html")
    entries = []
    for entry in channel.entries:
        if entry.id not in cache:
            cache[entry.id] = _feed_entry(config, entry)
        entries.append(cache[entry.id])
    fg.entry(entries)
    data: bytes = fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)
    return data


def _json_feed(config: Config, channel: Channel) -> bytes:
    settings = config.settings
    author = {"name": clean(settings.sender.name)}
    feed: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": clean(channel.title),
        "home_page_url": config.url(""),
        "feed_url": config.url(channel.folder + "feed.json"),
        "description": clean(channel.description),
        "language": settings.site.language,
        "authors": [author],
    }
    if settings.feeds.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in settings.feeds.hubs]
    feed["items"] = [
        {
            "id": e.id,
            "url": e.url,
            "title": e.title,
            "summary": e.summary,
            "content_html": e.html,
            "date_published": e.stamp.published.isoformat(),
            "date_modified": e.stamp.updated.isoformat(),
            "authors": [author],
            "tags": [label for _, _, label in e.categories],
        }
        for e in channel.entries
    ]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render_channel(
    config: Config, channel: Channel, cache: dict[str, FeedEntry]
) -> dict[str, bytes]:
    """The three files of one feed: RSS 2.0, Atom 1.0 and JSON Feed 1.1."""
    return {
        channel.folder + "feed.xml": _generator(config, channel, "rss", cache),
        channel.folder + "atom.xml": _generator(config, channel, "atom", cache),
        channel.folder + "feed.json": _json_feed(config, channel),
    }


@lru_cache(maxsize=64)
def _vtimezone(key: str, first_year: int, last_year: int) -> bytes:
    first, last = datetime(first_year, 1, 1).date(), datetime(last_year + 1, 1, 1).date()
    component = Timezone.from_tzinfo(ZoneInfo(key), tzid=key, first_date=first, last_date=last)
    data: bytes = component.to_ical()
    return data


def _vevent(config: Config, entry: Entry) -> bytes:
    event, tz = _event(entry), config.tz
    ve = VEvent()
    ve.add("uid", entry.id)
    ve.add("dtstamp", entry.stamp.updated)
    ve.add("last-modified", entry.stamp.updated)
    ve.add("created", entry.stamp.published)
    ve.add("sequence", entry.stamp.sequence)
    if event.all_day:
        ve.add("dtstart", event.start_at(tz).date())
        ve.add("dtend", last_day(event, config) + timedelta(days=1))  # exclusive
    else:
        ve.add("dtstart", event.start_at(tz).astimezone(tz))
        if event.end is not None:
            ve.add("dtend", event.end_at(tz).astimezone(tz))
    ve.add("summary", entry.title)
    place = event_place(event)
    if place or event.online:
        ve.add("location", clean(place or event.online or ""))
    lines = [entry.summary, "", f"Veranstalter: {clean(event.organiser)}"]
    if event.online:
        lines.append(f"Online: {event.online}")
    if event.registration:
        lines.append(f"Anmeldung: {event.registration}")
    lines.append(f"Mehr: {entry.url}")
    ve.add("description", "\n".join(lines))
    ve.add("url", entry.url)
    ve.add("status", ICS_STATUS[event.status])
    labels = [label for scheme, _, label in entry.categories if scheme.endswith("topic")]
    if labels:
        ve.add("categories", labels)
    data: bytes = ve.to_ical()
    return data


def _calendar_head(config: Config, name: str | None = None, path: str | None = None) -> bytes:
    """The VCALENDAR properties; a subscribed calendar also names itself and its source."""
    cal = Calendar()
    cal.add("prodid", f"-//{clean(config.settings.site.name)}//comms//DE")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name is not None and path is not None:
        cal.add("name", clean(name))
        cal.add("x-wr-calname", clean(name))
        cal.add("source", config.url(path), parameters={"VALUE": "URI"})
        cal.add("refresh-interval", timedelta(hours=12), parameters={"VALUE": "DURATION"})
    data: bytes = cal.to_ical()
    return data[: -len(b"END:VCALENDAR\r\n")]


def _calendar(config: Config, head: bytes, events: list[Entry], cache: dict[str, bytes]) -> bytes:
    """A VCALENDAR with a VTIMEZONE for the years of its timed events; VEVENTs built once."""
    parts = [head]
    tz = config.tz
    timed = [e.item for e in events if isinstance(e.item, Event) and not e.item.all_day]
    years = [y for ev in timed for y in (ev.start_at(tz).year, ev.end_at(tz).year)]
    if not events:
        # RFC 5545 wants at least one component: an empty calendar still has its time zone.
        years = [config.now().year]
    if years:
        parts.append(_vtimezone(config.settings.site.timezone, min(years), max(years)))
    for entry in events:
        if entry.id not in cache:
            cache[entry.id] = _vevent(config, entry)
        parts.append(cache[entry.id])
    parts.append(b"END:VCALENDAR\r\n")
    return b"".join(parts)


def published_entries(config: Config, site: Site) -> list[Entry]:
    """Every published item as an entry, newest first; records changes in the feed state."""
    history = History.load(config.root / STATE_FILE)
    now = config.now()
    records = history.observe(site.all_items(), now)
    history.save()
    entries = []
    for item in site.all_items():
        item_stamp = stamp(item, records[item.uid], config.tz)
        if is_public(item, item_stamp, now):
            entries.append(make_entry(config, site, item, item_stamp))
    entries.sort(key=lambda e: (e.stamp.published, e.id), reverse=True)
    return entries


def _event(entry: Entry) -> Event:
    assert isinstance(entry.item, Event)
    return entry.item


def _by_start(entries: list[Entry], tz: ZoneInfo) -> list[Entry]:
    """The event entries, soonest first."""
    events = [e for e in entries if isinstance(e.item, Event)]
    return sorted(events, key=lambda e: (_event(e).start_at(tz), e.id))


def channels(config: Config, entries: list[Entry]) -> list[Channel]:
    """Every feed: the whole site, each kind, and the upcoming events of each region."""
    settings, tz, now = config.settings, config.tz, config.now()
    site_name, cap = settings.site.name, settings.feeds.max_items
    found = [Channel("", "all", site_name, settings.site.description, entries[:cap])]
    for kind in ("issue", "practice", "award"):
        info = KINDS[kind]
        chosen = [e for e in entries if e.item.kind == kind][:cap]
        description = f"{info.plural} des Bündnisses „{site_name}“"
        found.append(
            Channel(
                f"{info.folder}/", info.folder, f"{site_name}: {info.plural}", description, chosen
            )
        )
    upcoming = [e for e in _by_start(entries, tz) if _event(e).end_at(tz) > now]
    found.append(
        Channel(
            "events/",
            "events",
            f"{site_name}: Termine",
            f"Kommende Veranstaltungen des Bündnisses „{site_name}“",
            upcoming,
            complete=True,
        )
    )
    for region, label in settings.regions.items():
        chosen = [e for e in upcoming if getattr(e.item, "region", None) == region]
        found.append(
            Channel(
                f"events/region/{region}/",
                f"events/region/{region}",
                f"{site_name}: Termine – {label}",
                f"Kommende Veranstaltungen des Bündnisses „{site_name}“ – Region {label}",
                chosen,
                complete=True,
            )
        )
    return found


def calendar_files(config: Config, entries: list[Entry]) -> dict[str, bytes]:
    """`events.ics` (upcoming and recent), one per region, one per event."""
    settings, tz = config.settings, config.tz
    since = config.now() - timedelta(days=settings.feeds.calendar_past_days)
    events = _by_start(entries, tz)
    recent = [e for e in events if _event(e).end_at(tz) > since]
    cache: dict[str, bytes] = {}
    site_name = settings.site.name
    head = _calendar_head(config, f"{site_name}: Termine", "events.ics")
    files = {"events.ics": _calendar(config, head, recent, cache)}
    for region, label in settings.regions.items():
        path = f"events-{region}.ics"
        chosen = [e for e in recent if getattr(e.item, "region", None) == region]
        head = _calendar_head(config, f"{site_name}: Termine – {label}", path)
        files[path] = _calendar(config, head, chosen, cache)
    # One event to add to a calendar once: nothing to subscribe to, so no name or source.
    single = _calendar_head(config)
    for entry in events:
        files[f"events/{entry.item.slug}.ics"] = _calendar(config, single, [entry], cache)
    return files


def feed_files(config: Config, site: Site) -> dict[str, bytes]:
    """The build producer: every feed and calendar, path → bytes."""
    entries = published_entries(config, site)
    files: dict[str, bytes] = {}
    cache: dict[str, FeedEntry] = {}
    for channel in channels(config, entries):
        files.update(render_channel(config, channel, cache))
    files.update(calendar_files(config, entries))
    return files
