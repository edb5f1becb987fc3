"""Feeds: RSS 2.0 and Atom 1.0 (feedgen) and JSON Feed 1.1; with the calendars, the producer.

Layout under the output folder (every folder holds `feed.xml`, `atom.xml` and `feed.json`):
the root (everything published, newest first), `issues/`, `practices/`, `awards/` (newest
first), `events/` (upcoming events, a complete feed) and `events/region/<region>/`; the
calendars are in `calendars.py`. Every path and URL comes from `comms.content.urls`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from comms.content import urls
from comms.content.models import KINDS, Event, Item, Site
from comms.core.config import Config
from comms.core.languages import Edition, home_edition
from comms.publish.calendars import calendar_files, calendar_title
from comms.publish.feed_entry import Entry, by_start, clean, published, tag
from comms.publish.feed_fragments import Fragments
from comms.publish.page_cache import keyed, prints
from comms.publish.producer import Build, Files, per_build
from comms.publish.templating import translate

# feedgen and lxml are imported where an RSS or Atom feed's bytes are made (~25 ms): a build
# after an edit that changes no feed (a past event) never needs them.
if TYPE_CHECKING:
    from feedgen.entry import FeedEntry

#: File name → format, in every feed folder.
FEED_FILES = {name: fmt for fmt, name in urls.FEED_NAMES.items()}
ATOM_NS = "http://www.w3.org/2005/Atom"
#: RFC 5005 feed history: `fh:complete` marks a feed that lists every current item.
FH_NS = "http://purl.org/syndication/history/1.0"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
#: `updated` of a feed with no entries: a fixed instant, so an empty feed never changes.
EPOCH = datetime(2015, 1, 1, tzinfo=UTC)


def is_feed(path: str) -> bool:
    """True for the feed files (RSS, Atom, JSON Feed) among the output paths."""
    return path.rpartition("/")[2] in FEED_FILES  # a str: asked of every path a build writes


@dataclass(frozen=True)
class Channel:
    """One feed: where it lives, what it is called and which entries it lists."""

    folder: str
    name: str
    title: str
    description: str
    entries: list[Entry]
    complete: bool = False


@cache
def _extras() -> type:
    """The feedgen extension that adds what feedgen lacks: RSS hub links and RFC 5005
    `fh:complete` (a class made once, at the first feed)."""
    from feedgen.ext.base import BaseExtension
    from lxml import etree

    class _Extras(BaseExtension):  # type: ignore[misc]
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

    return _Extras


def _feed_entry(config: Config, entry: Entry) -> FeedEntry:
    from feedgen.entry import FeedEntry

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


#: Where each entry of a feed begins and ends in its bytes, per format. An entry's text is
#: escaped, so these appear nowhere else.
_ENTRY_TAGS = {"rss": (b"<item>", b"</item>"), "atom": (b"<entry>", b"</entry>")}
#: Stands for the items of a JSON Feed until they are put in: no entry holds a NUL.
_ITEMS = "\0items"


def _spans(data: bytes, fmt: str) -> list[tuple[int, int]]:
    """Where each entry is in a feed's bytes, in order."""
    start_tag, end_tag = _ENTRY_TAGS[fmt]
    spans = []
    at = data.find(start_tag)
    while at != -1:
        end = data.index(end_tag, at) + len(end_tag)
        spans.append((at, end))
        at = data.find(start_tag, end)
    return spans


def _generator(
    config: Config,
    edition: Edition,
    channel: Channel,
    fmt: str,
    fragments: Fragments,
    feed_entries: dict[str, FeedEntry],
) -> bytes:
    from feedgen.feed import FeedGenerator

    settings = config.settings
    site_urls = urls.Urls(config, edition)
    self_url = site_urls.feed(channel.folder, fmt)
    fg = FeedGenerator()
    fg.register_extension("comms", _extras(), None)
    fg.comms.hubs = tuple(settings.feeds.hubs)
    fg.comms.complete = channel.complete
    fg.id(tag(config, f"feed/{site_urls.folder}{channel.name}"))
    fg.title(clean(channel.title))
    fg.description(clean(channel.description))
    fg.subtitle(clean(channel.description))
    fg.language(edition.language)
    fg.author(name=clean(settings.sender.name), email=settings.organisation.email)
    fg.generator("comms")
    fg.updated(_updated(channel))
    media = "application/rss+xml" if fmt == "rss" else "application/atom+xml"
    fg.link(href=self_url, rel="self", type=media)
    if fmt == "atom":
        for hub in settings.feeds.hubs:
            fg.link(href=hub, rel="hub")
    # feedgen takes the last link as the RSS channel link: the site itself.
    fg.link(href=site_urls.home(), rel="alternate", type="text/html")

    def serialized(entries: list[Entry]) -> bytes:
        made = []
        for entry in entries:
            if entry.id not in feed_entries:
                feed_entries[entry.id] = _feed_entry(config, entry)
            made.append(feed_entries[entry.id])
        fg.entry(made, replace=True)
        data: bytes = fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)
        return data

    entries = channel.entries
    if not entries:
        return serialized([])
    # The feed around its entries (its head and end) with any of them, and each entry's
    # bytes once: an entry's bytes are the same in every feed of the edition, and between
    # two entries is only the indentation.
    around: list[bytes] = []

    def split(missing: list[Entry]) -> list[bytes] | None:
        data = serialized(missing)
        spans = _spans(data, fmt)
        if len(spans) != len(missing):
            return None
        around.append(data)
        return [data[start:end] for start, end in spans]

    path = urls.feed_path(channel.folder, fmt)
    found = fragments.fragments(path, fmt, entries, split)
    if found is None:
        return serialized(entries)
    data = around[0] if around else serialized(entries[:1])
    spans = _spans(data, fmt)
    first, last = spans[0][0], spans[-1][1]
    indent = data[data.rindex(b"\n", 0, first) : first]
    return data[:first] + indent.join(found) + data[last:]


def _json_item(author: dict[str, str], e: Entry) -> dict[str, object]:
    return {
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


def _json_feed(config: Config, edition: Edition, channel: Channel, fragments: Fragments) -> bytes:
    settings, site_urls = config.settings, urls.Urls(config, edition)
    author = {"name": clean(settings.sender.name)}
    feed: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": clean(channel.title),
        "home_page_url": site_urls.home(),
        "feed_url": site_urls.feed(channel.folder, "json"),
        "description": clean(channel.description),
        "language": edition.language,
        "authors": [author],
    }
    if settings.feeds.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in settings.feeds.hubs]
    if not channel.entries:
        feed["items"] = []
        return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    # The items are the last member, each an object at the third level of indentation: JSON
    # text holds no line break inside a string, so each item is indented as a whole.

    def items(entries: list[Entry]) -> list[bytes]:
        return [
            json.dumps(_json_item(author, e), ensure_ascii=False, indent=2)
            .replace("\n", "\n    ")
            .encode("utf-8")
            for e in entries
        ]

    path = urls.feed_path(channel.folder, "json")
    found = fragments.fragments(path, "json", channel.entries, items)
    if found is None:
        found = items(channel.entries)
    feed["items"] = [_ITEMS]
    text = json.dumps(feed, ensure_ascii=False, indent=2) + "\n"
    head, _, end = text.rpartition(json.dumps(_ITEMS))
    return head.encode("utf-8") + b",\n    ".join(found) + end.encode("utf-8")


def render_channel(
    config: Config,
    edition: Edition,
    channel: Channel,
    fragments: Fragments,
    feed_entries: dict[str, FeedEntry],
) -> Files:
    """The three files of one feed of `edition`: RSS 2.0, Atom 1.0 and JSON Feed 1.1 (each
    made when it is read, keyed for the page cache; entries serialized once by
    `fragments`)."""
    keys = fragments.keys
    for fmt in ("rss", "atom", "json"):
        fragments.claim(urls.feed_path(channel.folder, fmt))
    makers: dict[str, Callable[[], bytes]] = {
        urls.feed_path(channel.folder, "rss"): partial(
            _generator, config, edition, channel, "rss", fragments, feed_entries
        ),
        urls.feed_path(channel.folder, "atom"): partial(
            _generator, config, edition, channel, "atom", fragments, feed_entries
        ),
        urls.feed_path(channel.folder, "json"): partial(
            _json_feed, config, edition, channel, fragments
        ),
    }
    return Files(
        {path: keyed(keys, make, "feed", path, edition, channel) for path, make in makers.items()}
    )


def _channel(
    folder: str, title: str, description: str, entries: list[Entry], complete: bool = False
) -> Channel:
    """A feed; its name (in its tag URI) is its folder, `all` for the root."""
    return Channel(folder, folder.rstrip("/") or "all", title, description, entries, complete)


def _upcoming(item: Item, tz: ZoneInfo, now: datetime) -> bool:
    return isinstance(item, Event) and item.end_at(tz) > now


def channels(config: Config, edition: Edition, entries: list[Entry]) -> list[Channel]:
    """Every feed of `edition`: the whole site, each kind, and the upcoming events of each
    region."""
    settings, tz, now = config.settings, config.tz, config.now()
    site_name, cap, language = settings.site.name, settings.feeds.max_items, edition.language

    def _(message: str, **values: str) -> str:
        return translate(language, message) % values

    found = [_channel("", site_name, settings.site.description, entries[:cap])]
    of_kind: dict[str, list[Entry]] = {"issue": [], "practice": [], "award": []}
    for entry in entries:  # one pass over the site's entries for the three kinds
        listed = of_kind.get(entry.item.kind)
        if listed is not None:
            listed.append(entry)
    for kind, all_of_kind in of_kind.items():
        kinds = _(KINDS[kind].plural)
        chosen = all_of_kind[:cap]
        description = _("%(kinds)s of the alliance “%(site)s”", kinds=kinds, site=site_name)
        found.append(_channel(urls.feed_folder(kind), f"{site_name}: {kinds}", description, chosen))
    # The event feeds list every upcoming event, so they are complete (RFC 5005).
    # Only the upcoming events are put in order (a few of the site's many events).
    upcoming = by_start([e for e in entries if _upcoming(e.item, tz, now)], tz)
    title = calendar_title(config, edition)
    description = _("Upcoming events of the alliance “%(site)s”", site=site_name)
    found.append(_channel(urls.feed_folder("event"), title, description, upcoming, True))
    for region, label in settings.regions.items():
        chosen = [e for e in upcoming if getattr(e.item, "region", None) == region]
        description = _(
            "Upcoming events of the alliance “%(site)s” – region %(region)s",
            site=site_name,
            region=label,
        )
        folder = urls.feed_folder(region=region)
        found.append(_channel(folder, f"{title} – {label}", description, chosen, True))
    return found


@per_build
def claimed_fragments(build: Build) -> set[str]:
    """The fragments files the feeds of every edition of `build` keep (`Fragments.claim`)."""
    return set()


def feed_files(build: Build) -> Files:
    """The build producer: every feed and calendar of the site's own edition."""
    return edition_feeds(build, home_edition(build.config), build.site)


def edition_feeds(build: Build, edition: Edition, site: Site) -> Files:
    """Every feed and calendar of `edition` (`site` as it shows it), path → bytes within the
    edition's folder, keyed for the page cache; the feed history is the build's, read once
    for all its editions."""
    config, keys = build.config, prints(build)
    entries = published(build).entries(edition, site)
    files = Files()
    fragments = Fragments(config, edition, keys, claimed_fragments(build))
    feed_entries: dict[str, FeedEntry] = {}
    for channel in channels(config, edition, entries):
        files.add(render_channel(config, edition, channel, fragments, feed_entries))
    files.add(calendar_files(config, edition, entries, keys, fragments))
    return files
