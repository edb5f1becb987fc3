"""iCalendar files (icalendar): `events.ics` (upcoming and recent events), `events-<region>.ics`
per region, and `events/<slug>.ics` per event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, tzinfo
from functools import cache, lru_cache, partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from comms.content import urls
from comms.content.models import Event
from comms.content.translation_files import has_page, language_of
from comms.core.config import Config
from comms.core.languages import Edition
from comms.publish.feed_entry import Entry, by_start, clean, event_place
from comms.publish.feed_fragments import Fragments
from comms.publish.page_cache import Fingerprints, Prefix, keyed
from comms.publish.producer import Body, Files, Keyed
from comms.publish.templating import last_day, translate

# icalendar is imported where a calendar's bytes are made (~45 ms): a build after an edit that
# changes no calendar (a practice, an issue) never needs it.
if TYPE_CHECKING:
    from icalendar import Component

ICS_STATUS = {"planned": "CONFIRMED", "postponed": "TENTATIVE", "cancelled": "CANCELLED"}
#: The most octets of one part of a folded content line (icalendar's fold: RFC 5545 3.1 allows
#: 75, the CRLF excluded; a continuation's leading space is not counted).
FOLD_OCTETS = 74


def folded(line: str) -> bytes:
    """One content line with its CRLF, folded byte for byte as icalendar folds it (never
    within a UTF-8 character, nor between a backslash or caret and what it escapes). It cuts
    the bytes where icalendar's own fold walks the characters one by one, which took a third
    of the calendars' time."""
    data = line.encode("utf-8")
    if len(data) <= FOLD_OCTETS:
        return data + b"\r\n"
    parts = []
    start = 0
    while len(data) - start > FOLD_OCTETS:
        end = start + FOLD_OCTETS
        while data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character
            end -= 1
        if end - start > 1 and data[end - 1] in b"\\^":
            end -= 1  # an escape stays with the character it escapes
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return b"\r\n ".join(parts) + b"\r\n"


def serialized(component: Component) -> bytes:
    """A component's iCalendar bytes: icalendar's content lines (its value and parameter
    encoders, properties sorted), folded by `folded`; the same bytes as `to_ical()`."""
    return b"".join(folded(line) for line in component.content_lines() if line)


@lru_cache(maxsize=64)
def _vtimezone(key: str, first_year: int, last_year: int) -> bytes:
    from icalendar import Timezone

    first, last = datetime(first_year, 1, 1).date(), datetime(last_year + 1, 1, 1).date()
    component = Timezone.from_tzinfo(ZoneInfo(key), tzid=key, first_date=first, last_date=last)
    return serialized(component)


def _description(edition: Edition, entry: Entry) -> str:
    """The summary, then the organiser, online and registration links and the page."""
    event = entry.event

    def _(message: str) -> str:
        return translate(edition.language, message)

    rows = [
        (_("Organiser"), clean(event.organiser)),
        (_("Online"), event.online or ""),
        (_("Registration"), event.registration or ""),
        (_("More"), entry.url),
    ]
    lines = [entry.summary, "", *(f"{label}: {value}" for label, value in rows if value)]
    return "\n".join(lines)


def _vevent(config: Config, edition: Edition, entry: Entry) -> bytes:
    event, tz = entry.event, config.tz
    # An edition's calendars say which language each text is in (RFC 5545 LANGUAGE): its
    # own, or the site's for an item not translated yet.
    text: dict[str, str] = {}
    if not edition.is_home:
        text = {"LANGUAGE": language_of(event, edition.home)}
    properties: list[tuple[str, Any, dict[str, str]]] = [
        ("uid", entry.id, {}),
        ("dtstamp", entry.stamp.updated, {}),
        ("last-modified", entry.stamp.updated, {}),
        ("created", entry.stamp.published, {}),
        ("sequence", entry.stamp.sequence, {}),
    ]
    if event.all_day:
        properties.append(("dtstart", event.start_at(tz).date(), {}))
        properties.append(("dtend", last_day(event, tz) + timedelta(days=1), {}))  # exclusive
    else:
        properties.append(("dtstart", event.start_at(tz).astimezone(tz), {}))
        if event.end is not None:
            properties.append(("dtend", event.end_at(tz).astimezone(tz), {}))
    properties.append(("summary", entry.title, text))
    place = event_place(event)
    if place or event.online:
        properties.append(("location", clean(place or event.online or ""), {}))
    properties.append(("description", _description(edition, entry), text))
    properties.append(("url", entry.url, {}))
    properties.append(("status", ICS_STATUS[event.status], {}))
    labels = [label for scheme, _, label in entry.categories if scheme.endswith("topic")]
    if labels:
        properties.append(("categories", labels, {}))
    return vevent(properties)


def vevent(properties: Iterable[tuple[str, Any, dict[str, str]]]) -> bytes:
    """A VEVENT of (name, value, parameters), one of each name: the bytes icalendar's
    `Event.add` of each and `to_ical` write (its value types, its property order), without
    building the component, which was most of a calendar's time."""
    from icalendar import Event as VEvent
    from icalendar.caselessdict import canonsort_keys
    from icalendar.timezone import tzp

    lines: dict[str, bytes] = {}
    for name, value, parameters in properties:
        upper = name.upper()
        if isinstance(value, date):
            if upper in _UTC_PROPERTIES and isinstance(value, datetime):
                value = tzp.localize_utc(value)  # as Event.add: RFC 5545 wants UTC there
            lines[upper] = _when(upper, value, getattr(value, "tzinfo", None))
        elif type(value) in _KEPT_TYPES and all(type(part) is str for part in _parts(value)):
            shape = tuple(value) if isinstance(value, list) else value
            kind = type(value).__name__
            lines[upper] = _kept_line(upper, kind, shape, tuple(parameters.items()))
        else:
            lines[upper] = _line(upper, _encode(upper, value, parameters))
    order = canonsort_keys(lines, VEvent.canonical_order)
    return b"".join([b"BEGIN:VEVENT\r\n", *(lines[name] for name in order), b"END:VEVENT\r\n"])


def _parts(value: Any) -> list[Any]:
    """The members of a list value (none of a single one)."""
    return value if isinstance(value, list) else []


#: The value types whose content lines are kept (`_kept_line`): exactly these, no subclass.
_KEPT_TYPES = (str, int, list)

#: The properties icalendar's `Component.add` converts to UTC.
_UTC_PROPERTIES = frozenset({"DTSTAMP", "CREATED", "LAST-MODIFIED"})


def _encode(name: str, value: Any, parameters: dict[str, str]) -> Any:
    """`value` as icalendar's property type for `name`, with `parameters` (as `add` does)."""
    from icalendar import Event as VEvent

    # Component._encode: the type and VALUE inference of `add`, one owner for both.
    return VEvent._encode(name, value, dict(parameters) or None)  # type: ignore[no-untyped-call]


def _line(name: str, encoded: Any) -> bytes:
    """One property's content line, folded, as icalendar's `Contentline.from_parts` makes it."""
    params = encoded.params.to_ical().decode() if getattr(encoded, "params", None) else ""
    value = encoded.to_ical().decode()
    return folded(f"{name};{params}:{value}" if params else f"{name}:{value}")


@lru_cache(maxsize=16_384)
def _kept_line(name: str, kind: type, value: Any, parameters: tuple[tuple[str, str], ...]) -> bytes:
    """The content line of a text, number or list property (a list as a tuple, `kind` the
    value's type). Kept: an event's status, sequence, place and topics come back in many
    events, and its texts in each calendar it is in."""
    made = list(value) if kind is list else value
    return _line(name, _encode(name, made, dict(parameters)))


@lru_cache(maxsize=16_384)
def _when(name: str, value: date, zone: tzinfo | None) -> bytes:
    """The content line of a date or date-time property. Kept: every event's dates come back
    in each edition and each calendar. `zone` is part of the key only: equal instants in two
    zones are equal keys but different lines."""
    return _line(name, _encode(name, value, {}))


def _calendar_head(
    config: Config, edition: Edition, name: str | None = None, path: str | None = None
) -> bytes:
    """The VCALENDAR properties; a subscribed calendar also names itself and its source."""
    from icalendar import Calendar

    site = config.settings.site
    cal = Calendar()
    # The last part of a PRODID is the language of its text (RFC 5545, 3.7.3).
    cal.add("prodid", f"-//{clean(site.name)}//comms//{edition.language.upper()}")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name is not None and path is not None:
        cal.add("name", clean(name))
        cal.add("x-wr-calname", clean(name))
        cal.add("source", urls.Urls(config, edition).in_edition(path), parameters={"VALUE": "URI"})
        cal.add("refresh-interval", timedelta(hours=12), parameters={"VALUE": "DURATION"})
    return serialized(cal)[: -len(b"END:VCALENDAR\r\n")]


def _calendar(
    config: Config,
    edition: Edition,
    head: bytes,
    events: list[Entry],
    cache: dict[str, bytes],
    kept: tuple[Fragments, str | None] | None = None,
) -> bytes:
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
    vevents = None
    if kept is not None:  # each VEVENT made once per build, and kept across builds
        fragments, path = kept
        make = lambda entries: [_vevent(config, edition, e) for e in entries]  # noqa: E731
        vevents = fragments.fragments(path, "ics", events, make)
    if vevents is None:
        vevents = []
        for entry in events:
            if entry.id not in cache:
                cache[entry.id] = _vevent(config, edition, entry)
            vevents.append(cache[entry.id])
    parts += vevents
    parts.append(b"END:VCALENDAR\r\n")
    return b"".join(parts)


def calendar_files(
    config: Config,
    edition: Edition,
    entries: list[Entry],
    keys: Fingerprints | None = None,
    fragments: Fragments | None = None,
) -> Files:
    """`events.ics` (upcoming and recent), one per region, one per event that has its files in
    `edition` (`translation_files.has_page`), of `edition` (each made when it is read; with
    `keys`, keyed for the page cache; with `fragments`, VEVENTs kept across builds)."""
    settings, tz = config.settings, config.tz
    since = config.now() - timedelta(days=settings.feeds.calendar_past_days)
    events = by_start(entries, tz)
    recent = [e for e in events if e.event.end_at(tz) > since]
    vevents: dict[str, bytes] = {}
    title = calendar_title(config, edition)

    def calendar(
        head: Callable[[], bytes], events: list[Entry], path: str | None = None, own: bool = False
    ) -> Body:
        kept = None if fragments is None else (fragments, path)
        if fragments is not None and path is not None:
            fragments.claim(path)
        make = lambda: _calendar(config, edition, head(), events, vevents, kept)  # noqa: E731
        if keys is None:
            return make
        # An empty calendar names the current year (its time zone's); a head its arguments.
        year = None if events else config.now().year
        if own:  # an event's own: the start of its key is every event's (`single_key`)
            return Keyed(lambda: single_key().key_or_none(events, year), make)
        return keyed(keys, make, "calendar", edition, getattr(head, "args", ()), events, year)

    @cache
    def single_key() -> Prefix:
        assert keys is not None
        return keys.prefix("calendar", edition, ())

    path = urls.calendar_path()
    head = partial(_calendar_head, config, edition, title, path)
    files = Files({path: calendar(head, recent, path)})
    for region, label in settings.regions.items():
        path = urls.calendar_path(region)
        chosen = [e for e in recent if getattr(e.item, "region", None) == region]
        head = partial(_calendar_head, config, edition, f"{title} – {label}", path)
        files[path] = calendar(head, chosen, path)
    # One event to add to a calendar once: nothing to subscribe to, so no name or source.
    single = cache(partial(_calendar_head, config, edition))
    for entry in events:
        if has_page(entry.item, edition):  # else the edition links the site's file
            files[urls.event_calendar_path(entry.item.slug)] = calendar(single, [entry], own=True)
    return files


def calendar_title(config: Config, edition: Edition) -> str:
    """`<site>: Termine`, the name of the event feeds and calendars of `edition`."""
    site = config.settings.site
    dates = translate(edition.language, "Event dates")
    return f"{site.name}: {dates}"
