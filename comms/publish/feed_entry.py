"""The German facts a feed entry shows above its text: when, where, who, and what an issue holds."""

from __future__ import annotations

from datetime import date, datetime
from html import escape

from babel import Locale
from babel.dates import format_date, format_interval, format_time
from babel.numbers import format_decimal

from comms.content.models import KINDS, Award, Event, Issue, Item, Practice, Site
from comms.core.config import Config

#: Parsed once: Babel parses a locale string on every call.
LOCALE = Locale.parse("de_DE")
DAY = "EEEE, d. MMMM y"
#: DIN 5008: a no-break space before "Uhr".
UHR = "\u00a0Uhr"
STATUS_PREFIX = {"cancelled": "Abgesagt: ", "postponed": "Verschoben: "}
STATUS_NOTE = {
    "cancelled": "Diese Veranstaltung fällt aus.",
    "postponed": "Diese Veranstaltung wird verschoben; der neue Termin folgt.",
}


def event_title(event: Event) -> str:
    """The title, marked when the event is cancelled or postponed."""
    return STATUS_PREFIX.get(event.status, "") + event.title


def last_day(event: Event, config: Config) -> date:
    """The last day an all-day event covers (its end may also be given with a time)."""
    end = event.end or event.start
    if isinstance(end, datetime):
        return end.astimezone(config.tz).date()
    return end


def event_when(event: Event, config: Config) -> str:
    """„Donnerstag, 16. April 2020, 09:30–16:30 Uhr“ and the all-day and multi-day variants."""
    tz = config.tz
    if event.all_day:
        first, last = event.start_at(tz).date(), last_day(event, config)
        if last == first:
            return format_date(first, DAY, locale=LOCALE)
        return format_interval(first, last, "yMMMMEEEEd", locale=LOCALE)
    start = event.start_at(tz).astimezone(tz)
    text = f"{format_date(start, DAY, locale=LOCALE)}, {format_time(start, 'HH:mm', locale=LOCALE)}"
    if event.end is None:
        return text + UHR
    end = event.end_at(tz).astimezone(tz)
    if end.date() == start.date():
        return f"{text}–{format_time(end, 'HH:mm', locale=LOCALE)}{UHR}"
    end_text = f"{format_date(end, DAY, locale=LOCALE)}, {format_time(end, 'HH:mm', locale=LOCALE)}"
    return f"{text}{UHR} bis {end_text}{UHR}"


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


def _event_html(config: Config, event: Event) -> str:
    note = STATUS_NOTE.get(event.status)
    head = f"<p><strong>{escape(note)}</strong></p>\n" if note else ""
    rows = [
        ("Termin", escape(event_when(event, config))),
        ("Ort", escape(event_place(event))),
        ("Online", _link(event.online) if event.online else ""),
        ("Veranstalter", escape(event.organiser)),
        ("Anmeldung", _link(event.registration) if event.registration else ""),
    ]
    return head + _facts(rows)


def _award_html(award: Award) -> tuple[str, str]:
    opens, deadline = (
        format_date(d, "d. MMMM y", locale=LOCALE) for d in (award.call.opens, award.call.deadline)
    )
    ceremony = ""
    if award.ceremony is not None:
        when = award.ceremony.date
        day = when.date() if isinstance(when, datetime) else when
        ceremony = f"{format_date(day, DAY, locale=LOCALE)}, {award.ceremony.place}"
    rows = [
        ("Preisgeld", escape(f"{format_decimal(award.prize_money, locale=LOCALE)} Euro")),
        ("Bewerbung", escape(f"{opens} bis {deadline}")),
        ("Preisverleihung", escape(ceremony)),
    ]
    winners = "".join(
        f"<li>{_link(w.url, w.name) if w.url else escape(w.name)} ({escape(w.city)}): "
        f"{escape(w.project)}</li>\n"
        for w in award.winners
    )
    tail = f"<h2>Ausgezeichnet</h2>\n<ul>\n{winners}</ul>\n" if winners else ""
    return _facts(rows), tail


def _practice_html(practice: Practice) -> str:
    rows = [
        ("Träger", escape(f"{practice.organisation}, {practice.city}")),
        ("Mehr erfahren", _link(practice.url) if practice.url else ""),
    ]
    return _facts(rows)


def _issue_contents(config: Config, site: Site, issue: Issue) -> str:
    lines = []
    for event in site.issue_events(issue, config.tz):
        url = config.url(f"{KINDS['event'].folder}/{event.slug}/")
        lines.append(f"{_link(url, event_title(event))} – {escape(event_when(event, config))}")
    for practice in site.issue_practices(issue):
        url = config.url(f"{KINDS['practice'].folder}/{practice.slug}/")
        lines.append(f"{_link(url, practice.title)} – {escape(practice.city)}")
    award = site.issue_award(issue)
    if award is not None:
        lines.append(_link(config.url(f"{KINDS['award'].folder}/{award.slug}/"), award.title))
    if not lines:
        return ""
    items = "".join(f"<li>{line}</li>\n" for line in lines)
    return f"<h2>In dieser Ausgabe</h2>\n<ul>\n{items}</ul>\n"


def entry_html(config: Config, site: Site, item: Item) -> str:
    """The full HTML content of a feed entry: facts first, then the item's own text."""
    if isinstance(item, Event):
        return _event_html(config, item) + item.html
    if isinstance(item, Award):
        head, tail = _award_html(item)
        return head + item.html + tail
    if isinstance(item, Practice):
        return _practice_html(item) + item.html
    if isinstance(item, Issue):
        return item.html + _issue_contents(config, site, item)
    return item.html
