"""Published items as feed and calendar entries: ids, links, stamps, categories, and the facts
an entry shows above its text (when, where, who, and what an issue holds)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from html import escape
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal

from comms.content import urls
from comms.content.models import KINDS, Award, Event, Issue, Item, Practice, Site
from comms.core.config import Config
from comms.core.languages import Edition
from comms.publish.feed_state import History, Stamp, is_public, stamp
from comms.publish.state import PublishState
from comms.publish.templating import Formatter

# XML 1.0 allows only these characters; lxml refuses the others (docs/requirements.md F9).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    """Drop characters XML cannot carry (C0 controls, lone surrogates, U+FFFE/FFFF)."""
    return _NOT_XML.sub("", text)


def tag(config: Config, name: str) -> str:
    """A tag URI (RFC 4151) for what is not an item: a feed, a category scheme."""
    return f"tag:{config.host},2015:{name}"


@dataclass(frozen=True)
class Entry:
    """One published item as every feed and calendar shows it."""

    item: Item
    id: str
    url: str
    title: str
    summary: str
    stamp: Stamp
    categories: tuple[tuple[str, str, str], ...]  # (scheme, term, label)
    #: What the HTML shows beside the item (an issue's events, practices and award): with
    #: the fields above, everything the HTML is made from (the page cache's key).
    shows: tuple[Item, ...]
    #: Makes the HTML content, once, when a feed that is not cached needs it.
    make_html: Callable[[], str] = field(compare=False, repr=False)

    @cached_property
    def html(self) -> str:
        """The full HTML content: facts first, then the item's own text."""
        return self.make_html()

    @property
    def event(self) -> Event:
        """The item of an event entry."""
        assert isinstance(self.item, Event)
        return self.item


class EntryFacts:
    """Worded facts of feed entries and calendar events in one edition's language."""

    def __init__(self, config: Config, edition: Edition) -> None:
        self.config = config
        self.fmt = Formatter(config, edition)
        self.urls = urls.Urls(config, edition)
        self._ = self.fmt._

    def event_title(self, event: Event) -> str:
        """The title, marked when the event is cancelled or postponed."""
        status = self.fmt.status(event.status)
        return f"{status}: {event.title}" if status else event.title

    def status_note(self, event: Event) -> str:
        """The sentence that announces a cancelled or postponed event ('' when planned)."""
        notes = {
            "cancelled": self._("This event is cancelled."),
            "postponed": self._("This event is postponed; the new date will follow."),
        }
        return notes.get(event.status, "")

    def _event_html(self, event: Event) -> str:
        note = self.status_note(event)
        head = f"<p><strong>{escape(note)}</strong></p>\n" if note else ""
        rows = [
            (self._("Date"), escape(self.fmt.event_when(event))),
            (self._("Place"), escape(event_place(event))),
            (self._("Online"), _link(event.online) if event.online else ""),
            (self._("Organiser"), escape(event.organiser)),
            (self._("Registration"), _link(event.registration) if event.registration else ""),
        ]
        return head + _facts(rows)

    def _award_html(self, award: Award) -> tuple[str, str]:
        fmt = self.fmt
        ceremony = ""
        if award.ceremony is not None:
            ceremony = f"{fmt.moment(award.ceremony.date)}, {award.ceremony.place}"
        money = format_decimal(award.prize_money, locale=fmt.locale)
        rows = [
            (self._("Prize money"), escape(self._("%(amount)s euros") % {"amount": money})),
            (self._("Applications"), escape(fmt.period(award.call.opens, award.call.deadline))),
            (self._("Award ceremony"), escape(ceremony)),
        ]
        winners = "".join(
            f"<li>{_link(w.url, w.name) if w.url else escape(w.name)} ({escape(w.city)}): "
            f"{escape(w.project)}</li>\n"
            for w in award.winners
        )
        heading = escape(self._("Awarded"))
        tail = f"<h2>{heading}</h2>\n<ul>\n{winners}</ul>\n" if winners else ""
        return _facts(rows), tail

    def _practice_html(self, practice: Practice) -> str:
        rows = [
            (self._("Run by"), escape(f"{practice.organisation}, {practice.city}")),
            (self._("Learn more"), _link(practice.url) if practice.url else ""),
        ]
        return _facts(rows)

    def _issue_contents(self, site: Site, issue: Issue) -> str:
        lines = []
        for event in site.issue_events(issue, self.config.tz):
            link = _link(self.urls.item(event), self.event_title(event))
            lines.append(f"{link} – {escape(self.fmt.event_when(event))}")
        for practice in site.issue_practices(issue):
            lines.append(
                f"{_link(self.urls.item(practice), practice.title)} – {escape(practice.city)}"
            )
        award = site.issue_award(issue)
        if award is not None:
            lines.append(_link(self.urls.item(award), award.title))
        if not lines:
            return ""
        items = "".join(f"<li>{line}</li>\n" for line in lines)
        heading = escape(self._("In this issue"))
        return f"<h2>{heading}</h2>\n<ul>\n{items}</ul>\n"

    def entry_html(self, site: Site, item: Item) -> str:
        """The full HTML content of a feed entry: facts first, then the item's own text."""
        if isinstance(item, Event):
            return self._event_html(item) + item.html
        if isinstance(item, Award):
            head, tail = self._award_html(item)
            return head + item.html + tail
        if isinstance(item, Practice):
            return self._practice_html(item) + item.html
        if isinstance(item, Issue):
            return item.html + self._issue_contents(site, item)
        return item.html

    def categories(self, item: Item) -> tuple[tuple[str, str, str], ...]:
        """(scheme, term, label) of an item's kind, topics and region."""
        settings = self.config.settings
        found = [("kind", item.kind, self._(KINDS[item.kind].label))]
        found += [("topic", t, settings.topics.get(t, t)) for t in getattr(item, "topics", [])]
        region = getattr(item, "region", None)
        if region:
            found.append(("region", region, settings.regions.get(region, region)))
        return tuple(
            (tag(self.config, f"category/{dim}"), term, clean(label)) for dim, term, label in found
        )

    def entry(self, site: Site, item: Item, item_stamp: Stamp) -> Entry:
        """The feed view of one item: id, link, title and HTML content with its facts."""
        title = (
            self.event_title(item) if isinstance(item, Event) else str(getattr(item, "title", ""))
        )
        shows: tuple[Item, ...] = ()
        if isinstance(item, Issue):
            award = site.issue_award(item)
            shows = (
                *site.issue_events(item, self.config.tz),
                *site.issue_practices(item),
                *([award] if award is not None else []),
            )
        return Entry(
            item=item,
            id=self.config.item_id(item.kind, item.slug),
            url=self.urls.item(item),
            title=clean(title),
            summary=clean(str(getattr(item, "summary", ""))),
            stamp=item_stamp,
            categories=self.categories(item),
            shows=shows,
            make_html=lambda: self.urls.absolute_links(clean(self.entry_html(site, item))),
        )


def published_entries(
    config: Config, edition: Edition, site: Site, state: PublishState
) -> list[Entry]:
    """Every published item of `edition` as an entry, newest first; the site's own edition
    records changes in the feed state."""
    history = History.load(state)
    now = config.now()
    if edition.is_home:
        records = history.observe(site.all_items(), now)
        history.save()
    else:
        # An edition's entries carry the stamps of their originals: a translation is not a
        # change of the item, and its digest must not overwrite the original's. Only an item
        # the site's feeds have not recorded (yet) needs a record of its own.
        unseen = [item for item in site.all_items() if item.uid not in history.records]
        records = {**History(history.state).observe(unseen, now), **history.records}
    facts = EntryFacts(config, edition)
    entries = []
    for item in site.all_items():
        item_stamp = stamp(item, records[item.uid], config.tz)
        if is_public(item, item_stamp, now, site):
            entries.append(facts.entry(site, item, item_stamp))
    entries.sort(key=lambda e: (e.stamp.published, e.id), reverse=True)
    return entries


def by_start(entries: list[Entry], tz: ZoneInfo) -> list[Entry]:
    """The event entries, soonest first."""
    events = [e for e in entries if isinstance(e.item, Event)]
    return sorted(events, key=lambda e: (e.event.start_at(tz), e.id))


def event_place(event: Event) -> str:
    """Name and address of the venue (the city when there is no address), or ''."""
    loc = event.location
    if loc is None:
        return ""
    return f"{loc.name}, {loc.address or loc.city}"


def _link(url: str, text: str | None = None) -> str:
    return f'<a href="{escape(url)}">{escape(text or url)}</a>'


def _facts(rows: list[tuple[str, str]]) -> str:
    """`<p>` with one „Label: value“ line per fact; values are HTML already."""
    lines = [f"<strong>{escape(label)}:</strong> {value}" for label, value in rows if value]
    return "<p>" + "<br>\n".join(lines) + "</p>\n" if lines else ""
