"""Published items as feed and calendar entries: ids, links, stamps, categories, and the facts
an entry shows above its text (when, where, who, and what an issue holds)."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property, partial
from html import escape
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal

from comms.content import urls
from comms.content.models import KINDS, Award, Event, Issue, Item, Practice, Site
from comms.core.config import Config
from comms.core.languages import Edition
from comms.publish import build_record
from comms.publish.feed_state import History, Record, Stamp, digest, is_public, stamp
from comms.publish.item_memo import ItemMemo
from comms.publish.page_cache import Merkle
from comms.publish.producer import Build, per_build
from comms.publish.state import PublishState
from comms.publish.templating import Formatter

# The characters XML 1.0 does not allow, which lxml refuses (docs/requirements.md F9): all but
# tab, LF, CR, U+0020-D7FF, U+E000-FFFD and U+10000-10FFFF. Named, not as the negation of those
# ranges, which took 5 ms to compile at every start.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Drop characters XML cannot carry (C0 controls, lone surrogates, U+FFFE/FFFF)."""
    return _NOT_XML.sub("", text)


def tag(config: Config, name: str) -> str:
    """A tag URI (RFC 4151) for what is not an item: a feed, a category scheme."""
    return f"tag:{config.host},2015:{name}"


class Entry(Merkle):
    """One published item as every feed and calendar shows it, each field worded when it is
    first read: a feed the page cache still holds reads none of them."""

    def __init__(self, facts: EntryFacts, site: Site, item: Item, id: str, stamp: Stamp) -> None:
        self.item = item
        self.id = id
        self.stamp = stamp
        self._facts = facts
        self._site = site

    def parts(self) -> tuple[object, ...]:
        """What the entry is made from beside the build's shared inputs: its edition, its
        item, its stamp and what it shows (the page cache's key, Merkle style)."""
        edition = self._facts.edition
        # Only an issue shows more (and `shows`, a cached property, is slow to ask).
        shows = self.shows if isinstance(self.item, Issue) else ()
        # The stamp as its own (frozen) value: every edition's entry shares its digest.
        return (edition.language, edition.home, self.item, self.stamp, shows)

    @cached_property
    def url(self) -> str:
        """The item's page (in the edition where it has one there)."""
        return self._facts.urls.item(self.item)

    @cached_property
    def title(self) -> str:
        """The title, an event's marked when it is cancelled or postponed."""
        item = self.item
        if isinstance(item, Event):
            return clean(self._facts.event_title(item))
        return clean(str(getattr(item, "title", "")))

    @cached_property
    def summary(self) -> str:
        """The item's summary ('' when it has none)."""
        return clean(str(getattr(self.item, "summary", "")))

    @cached_property
    def categories(self) -> tuple[tuple[str, str, str], ...]:
        """(scheme, term, label) of the item's kind, topics and region."""
        return self._facts.categories(self.item)

    @cached_property
    def shows(self) -> tuple[Item, ...]:
        """What the HTML shows beside the item (an issue's events, practices and award)."""
        item, site = self.item, self._site
        if not isinstance(item, Issue):
            return ()
        award = site.issue_award(item)
        return (
            *site.issue_events(item, self._facts.config.tz),
            *site.issue_practices(item),
            *([award] if award is not None else []),
        )

    @cached_property
    def html(self) -> str:
        """The full HTML content: facts first, then the item's own text."""
        facts = self._facts
        return facts.urls.absolute_links(clean(facts.entry_html(self._site, self.item)))

    @property
    def event(self) -> Event:
        """The item of an event entry."""
        assert isinstance(self.item, Event)
        return self.item


class EntryFacts:
    """Worded facts of feed entries and calendar events in one edition's language."""

    def __init__(self, config: Config, edition: Edition) -> None:
        self.config = config
        self.edition = edition
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


class Published:
    """The feed history as one build sees it and what follows from it for each item in every
    edition alike (its id, its stamp, whether it is public), each worked out once."""

    def __init__(self, config: Config, state: PublishState) -> None:
        self.config = config
        self.state = state
        self.now = config.now()
        self.history = History.load(state)
        self._observed = False
        self._ids: dict[str, str] = {}
        #: id(item) → (item, its uid, its record, its stamp, public?): the item and record are
        #: kept, so an id is not reused and a record the site's feeds change is seen.
        self._known: dict[int, tuple[Item, str, Record, Stamp, bool]] = {}
        #: The last site's public items with their ids and stamps, newest first (`entries`):
        #: editions without translations show the site itself, so they share it.
        self._order: tuple[Site, list[tuple[Item, str, Stamp]]] | None = None

    def _records(self, edition: Edition, site: Site) -> dict[str, Record]:
        history = self.history
        if edition.is_home and not self._observed:
            code = build_record.code_digest()
            digests = ItemMemo[str](self.config.root, site, "feed-digests", code)
            history.observe(site.all_items(), self.now, partial(digests.get, make=digest))
            digests.save()
            history.save()
            self._observed = True
            return history.records
        # An edition's entries carry the stamps of their originals: a translation is not a
        # change of the item, and its digest must not overwrite the original's. Only an item
        # the site's feeds have not recorded (yet) needs a record of its own.
        unseen = [item for item in site.all_items() if self._uid(item) not in history.records]
        if not unseen:
            return history.records
        return {**History(self.state).observe(unseen, self.now), **history.records}

    def _uid(self, item: Item) -> str:
        """`item.uid`, as `entries` found it (every edition asks for every item)."""
        seen = self._known.get(id(item))
        return seen[1] if seen is not None and seen[0] is item else item.uid

    def _seen(
        self, item: Item, records: dict[str, Record], site: Site
    ) -> tuple[Item, str, Record, Stamp, bool]:
        """(item, uid, record, stamp, public?) of `item`, worked out once per item and record."""
        seen = self._known.get(id(item))
        uid = seen[1] if seen is not None and seen[0] is item else item.uid
        record = records[uid]
        if seen is None or seen[0] is not item or seen[2] is not record:
            item_stamp = stamp(item, record, self.config.tz)
            public = is_public(item, item_stamp, self.now, site)
            seen = self._known[id(item)] = (item, uid, record, item_stamp, public)
        return seen

    def _replaced(
        self, shown: Site, rows: list[tuple[Item, str, Stamp]], site: Site
    ) -> list[tuple[Item, str, Stamp]] | None:
        """`rows`, the entries of `shown`, for `site` that shows the same items with some
        replaced (an edition's translations, `edition_site`): each in its original's place,
        if it has the original's stamp and is public alike. None where `site` differs
        otherwise: then its entries are worked out item by item."""
        rules = (site.sent, site.public_on_send, site.tz)
        if rules != (shown.sent, shown.public_on_send, shown.tz):
            return None
        originals, items = shown.all_items(), site.all_items()
        if len(originals) != len(items):
            return None
        records = self.history.records
        instead: dict[int, Item] = {}
        for original, item in zip(originals, items, strict=True):
            if item is original:
                continue
            was, alike = self._seen(original, records, shown), self._seen(item, records, site)
            if alike[1] != was[1] or alike[3] != was[3] or alike[4] != was[4]:
                return None
            instead[id(original)] = item
        return [(instead.get(id(item), item), item_id, when) for item, item_id, when in rows]

    def entries(self, edition: Edition, site: Site) -> list[Entry]:
        """Every published item of `edition` as an entry, newest first; the site's own
        edition records changes in the feed state."""
        config, ids = self.config, self._ids
        records = self._records(edition, site)
        facts = EntryFacts(config, edition)
        order = self._order
        if order is not None and records is self.history.records:
            shared = order[1] if order[0] is site else self._replaced(order[0], order[1], site)
            if shared is not None:
                return [Entry(facts, site, item, item_id, when) for item, item_id, when in shared]
        rows = []
        for item in site.all_items():
            seen = self._seen(item, records, site)
            if not seen[4]:
                continue
            uid = seen[1]
            item_id = ids.get(uid)
            if item_id is None:
                item_id = ids[uid] = config.item_id(item.kind, item.slug)
            rows.append((seen[3].published, item_id, item, seen[3]))
        # Newest first, then by id (a stable sort: items alike keep the site's order).
        rows.sort(key=_newest, reverse=True)
        entries = [Entry(facts, site, item, item_id, when) for _, item_id, item, when in rows]
        # The history no longer changes once the site's feeds observed it (`_records`).
        if self._observed and records is self.history.records:
            self._order = (site, [(e.item, e.id, e.stamp) for e in entries])
        return entries


def _newest(row: tuple[datetime, str, Item, Stamp]) -> tuple[datetime, str]:
    return row[0], row[1]


@per_build
def published(build: Build) -> Published:
    """The feed history of `build`, read once for all its editions."""
    return Published(build.config, build.state)


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
