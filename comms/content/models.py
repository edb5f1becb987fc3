"""The content kinds (Event, Award, Practice, Issue) as typed models, and the KINDS registry."""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DE_DATE_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_OFFSET_RE = re.compile(r"^(.*?)(Z|[+-]\d{2}:?\d{2})$")


def _tz(info: ValidationInfo) -> ZoneInfo:
    context = info.context or {}
    tz = context.get("tz")
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo("Europe/Berlin")


_MONTHS = (
    "January February March April May June July August September October November December"
).split()
#: What the editor may write, named in every date error.
DATE_FORMATS = "YYYY-MM-DD or DD.MM.YYYY"
DATETIME_FORMATS = "YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM"


def _impossible(year: int, month: int, day: int) -> str:
    """Why a date that has the right shape does not exist ("April has 30 days")."""
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    if day < 1:
        return f"there is no day {day}"
    last = calendar.monthrange(year, month)[1] if year >= 1 else 31
    name = _MONTHS[month - 1]
    if month == 2:
        return f"February {year} has {last} days"
    return f"{name} has {last} days"


def _parse_date(text: str) -> date | str | None:
    """The date, or why a date-shaped text is impossible, or None for any other text."""
    for pattern, order in ((_DATE_RE, (0, 1, 2)), (_DE_DATE_RE, (2, 1, 0))):
        match = pattern.match(text)
        if match:
            parts = [int(g) for g in match.groups()]
            year, month, day = parts[order[0]], parts[order[1]], parts[order[2]]
            try:
                return date(year, month, day)
            except ValueError:
                return f"{text}: {_impossible(year, month, day)}"
    return None


def _bad_time(hour: int, minute: int, second: int) -> str:
    if hour > 23:
        return f"there is no hour {hour}"
    if minute > 59:
        return f"there is no minute {minute}"
    return f"there is no second {second}"


def parse_when(value: Any, tz: ZoneInfo, allow_date: bool = True) -> date | datetime:
    """Parse a date (`2020-04-16`, `16.04.2020`) or a local date-time (`2020-04-16 10:00`).

    Errors name the accepted formats and, for a well-formed impossible date or time, the
    reason ("31.04.2020: April has 30 days").
    """
    if allow_date:
        wanted = f"a date ({DATE_FORMATS}, optionally with a time HH:MM)"
    else:
        wanted = f"a date and time ({DATETIME_FORMATS})"
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        if allow_date:
            return value
        raise ValueError(f"expected {wanted}, got '{value.isoformat()}'")
    text = str(value).strip()
    offset: str | None = None
    match = _OFFSET_RE.match(text)
    if match and ("T" in text or " " in text):
        text, offset = match.group(1).strip(), match.group(2)
    day_text, _, time_text = text.replace("T", " ", 1).partition(" ")
    day = _parse_date(day_text)
    if isinstance(day, str):
        raise ValueError(f"{day} (dates are written {DATE_FORMATS})")
    time_match = _TIME_RE.match(time_text.strip()) if time_text.strip() else None
    if day is None or (time_text.strip() and time_match is None):
        raise ValueError(f"expected {wanted}, got '{value}'")
    if time_match is None:
        if offset or not allow_date:
            raise ValueError(f"expected {wanted}, got '{value}'")
        return day
    hour, minute, second = (int(g) if g else 0 for g in time_match.groups())
    try:
        clock = time(hour, minute, second)
    except ValueError:
        reason = _bad_time(hour, minute, second)
        raise ValueError(f"{time_text.strip()}: {reason} (times are written HH:MM)") from None
    if offset:
        parsed = datetime.fromisoformat(f"{day.isoformat()}T{clock.isoformat()}{offset}")
        return parsed
    return datetime.combine(day, clock, tzinfo=tz)


def instant(when: date | datetime, tz: ZoneInfo, end: bool = False) -> datetime:
    """A date or date-time as an aware instant; a date that ends something ends at midnight
    after it (an all-day event on 1 June lasts until 2 June, 00:00)."""
    if isinstance(when, datetime):
        return when
    return datetime.combine(when + timedelta(days=1 if end else 0), time(), tzinfo=tz)


def _when(value: Any, info: ValidationInfo) -> date | datetime:
    return parse_when(value, _tz(info))


def _moment(value: Any, info: ValidationInfo) -> datetime:
    parsed = parse_when(value, _tz(info), allow_date=False)
    assert isinstance(parsed, datetime)
    return parsed


def _day(value: Any, info: ValidationInfo) -> date:
    parsed = parse_when(value, _tz(info))
    if isinstance(parsed, datetime):
        raise ValueError(f"expected a date without a time, got '{value}'")
    return parsed


def _url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        close = difflib.get_close_matches(parts.scheme.lower(), ("http", "https"), n=1)
        hint = f"; did you mean '{close[0]}:'?" if parts.scheme and close else ""
        raise ValueError(f"expected an absolute http(s) URL, got '{value}'{hint}")
    return text


def _text(value: Any) -> Any:
    # YAML turns `title: 2019` into an int; a title may well be a number.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _one_line(value: str) -> str:
    """Text that goes into a mail header: one line, no control characters."""
    for char in value:
        if char in _LINE_BREAKS:
            raise ValueError("contains a line break; it goes into a mail header: keep it one line")
        if unicodedata.category(char) == "Cc":
            raise ValueError(
                f"contains the control character U+{ord(char):04X}; it goes into a mail header"
            )
    return value


def _email(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"'{value.strip()}' is not a valid e-mail address: {exc}") from None
    return value


#: German status words editors type, understood as the English values the code uses.
GERMAN_STATUS = {
    "geplant": "planned",
    "abgesagt": "cancelled",
    "verschoben": "postponed",
    "entwurf": "draft",
    "bereit": "ready",
}


def _status(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        return GERMAN_STATUS.get(word, word)
    return value


When = Annotated[date | datetime, BeforeValidator(_when)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Day = Annotated[date, BeforeValidator(_day)]
Url = Annotated[str, BeforeValidator(_url)]
Text = Annotated[str, BeforeValidator(_text)]
HeaderText = Annotated[str, BeforeValidator(_text), AfterValidator(_one_line)]
Email = Annotated[str, BeforeValidator(_email)]
EventStatus = Annotated[Literal["planned", "cancelled", "postponed"], BeforeValidator(_status)]
IssueStatus = Annotated[Literal["draft", "ready"], BeforeValidator(_status)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _not_blank(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and not value and info.field_name != "html":
            raise ValueError("must not be empty")
        return value


class Image(_Model):
    """An image with its (required) alternative text."""

    src: Text
    alt: Text | None = Field(default=None, validate_default=True)

    @field_validator("alt", mode="after")
    @classmethod
    def _alt(cls, value: str | None) -> str:
        if not value:
            raise ValueError("image without alt text")
        return value


class Location(_Model):
    """Where an event takes place."""

    name: Text
    address: Text | None = None
    city: Text


class Contact(_Model):
    """Who to ask about a practice."""

    name: Text | None = None
    email: Email | None = None
    phone: Text | None = None


class Call(_Model):
    """The call for entries of an award."""

    opens: Day
    deadline: Day


class Ceremony(_Model):
    """When and where an award is presented."""

    date: When
    place: Text


class Winner(_Model):
    """One award winner."""

    name: Text
    project: Text
    city: Text
    url: Url | None = None


def _allowed(key: str, label: str) -> Callable[[str, ValidationInfo], str]:
    def check(value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get(key)
        if allowed is not None and value not in allowed:
            close = difflib.get_close_matches(value, sorted(allowed), n=1, cutoff=0.75)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(allowed))
            raise ValueError(f"unknown {label} '{value}' (known: {known}){hint}")
        return value

    return check


Region = Annotated[str, AfterValidator(_allowed("regions", "region"))]
Topic = Annotated[str, AfterValidator(_allowed("topics", "topic"))]


class Item(_Model):
    """What every content item has; `slug`, `path` and `html` come from the file, not the YAML."""

    kind: ClassVar[str] = ""
    internal: ClassVar[frozenset[str]] = frozenset({"slug", "path", "html", "body", "lines"})

    slug: str = "-"
    path: Path = Path("-")
    body: str = "-"
    html: str = ""
    lines: dict[str, int] = {}
    published: When | None = None
    updated: Moment | None = None

    @property
    def uid(self) -> str:
        """`kind/slug`: the stable part of every id of this item."""
        return f"{self.kind}/{self.slug}"

    def line(self, key: str) -> int:
        """The line of a front matter key (`events.2` for a list element) in the item's file."""
        if key in self.lines:
            return self.lines[key]
        return self.lines.get(key.split(".")[0], 1)


class _Tagged(Item):
    region: Region
    topics: list[Topic] = []


class Event(_Tagged):
    """A conference, dialogue, workshop or action day."""

    kind: ClassVar[str] = "event"

    title: Text
    start: When
    end: When | None = None
    location: Location | None = None
    online: Url | None = None
    organiser: Text
    registration: Url | None = None
    status: EventStatus = "planned"
    image: Image | None = None
    summary: Text

    @property
    def all_day(self) -> bool:
        """True when the event has dates only, no times."""
        return not isinstance(self.start, datetime)

    def start_at(self, tz: ZoneInfo) -> datetime:
        """The start as an aware datetime (midnight for all-day events)."""
        return instant(self.start, tz)

    def end_at(self, tz: ZoneInfo) -> datetime:
        """The end as an aware datetime (the following midnight for all-day events)."""
        return instant(self.end or self.start, tz, end=True)


class Award(Item):
    """One year of the alliance's special prize."""

    kind: ClassVar[str] = "award"

    title: Text
    year: int
    prize_money: int
    call: Call
    ceremony: Ceremony | None = None
    winners: list[Winner] = []
    summary: Text


class Practice(_Tagged):
    """A best-practice story."""

    kind: ClassVar[str] = "practice"

    title: Text
    organisation: Text
    city: Text
    contact: Contact | None = None
    url: Url | None = None
    image: Image | None = None
    summary: Text


class Issue(Item):
    """One newsletter edition."""

    kind: ClassVar[str] = "issue"

    number: int
    subject: HeaderText
    preheader: HeaderText
    date: Day
    send_at: Moment | None = None
    status: IssueStatus = "draft"
    events: list[Text] = []
    upcoming_events_days: int | None = None
    practices: list[Text] = []
    award: Text | None = None
    topics: list[Topic] = []
    regions: list[Region] = []

    @property
    def title(self) -> str:
        """Issues are titled by their subject."""
        return self.subject

    @property
    def summary(self) -> str:
        """Issues are summarised by their preheader."""
        return self.preheader


def N_(message: str) -> str:
    """Mark an interface string for the catalogs; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class Kind:
    """One content kind: name, folder (of its files and pages), model, labels (message ids)."""

    name: str
    folder: str
    model: type[Item]
    label: str
    plural: str


KINDS: dict[str, Kind] = {
    "event": Kind("event", "events", Event, N_("Event"), N_("Events")),
    "award": Kind("award", "awards", Award, N_("Special prize"), N_("Special prizes")),
    "practice": Kind("practice", "practices", Practice, N_("Good example"), N_("Good examples")),
    "issue": Kind("issue", "issues", Issue, N_("Newsletter"), N_("Newsletter issues")),
}
FOLDERS: dict[str, Kind] = {kind.folder: kind for kind in KINDS.values()}


def front_matter_fields(model: type[Item]) -> list[str]:
    """The keys an editor may write in the front matter of this kind."""
    return [name for name in model.model_fields if name not in Item.internal]


@dataclass
class Site:
    """All valid content, by kind and slug, with cross-references resolved."""

    events: dict[str, Event] = field(default_factory=dict)
    awards: dict[str, Award] = field(default_factory=dict)
    practices: dict[str, Practice] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Berlin"))

    def by_kind(self, kind: str) -> dict[str, Any]:
        """The items of one kind, keyed by slug."""
        found: dict[str, Any] = getattr(self, KINDS[kind].folder)
        return found

    def all_items(self) -> list[Item]:
        """Every item of every kind."""
        return [
            *self.events.values(),
            *self.awards.values(),
            *self.practices.values(),
            *self.issues.values(),
        ]

    def upcoming_events(self, now: datetime, days: int | None = None) -> list[Event]:
        """Events that have not ended at `now`, soonest first; within `days` if given."""
        tz = self.tz
        limit = now + timedelta(days=days) if days is not None else None
        found = [
            event
            for event in self.events.values()
            if event.end_at(tz) > now and (limit is None or event.start_at(tz) <= limit)
        ]
        return sorted(found, key=lambda e: (e.start_at(tz), e.slug))

    def issue_events(self, issue: Issue, tz: ZoneInfo) -> list[Event]:
        """The events an issue features: named ones first, then upcoming ones, no repeats."""
        chosen = [self.events[slug] for slug in issue.events if slug in self.events]
        if issue.upcoming_events_days is not None:
            start = instant(issue.date, tz)
            named = {event.slug for event in chosen}
            for event in self.upcoming_events(start, issue.upcoming_events_days):
                if event.slug not in named and event.status != "cancelled":
                    chosen.append(event)
        return chosen

    def issue_practices(self, issue: Issue) -> list[Practice]:
        """The practices an issue features."""
        return [self.practices[slug] for slug in issue.practices if slug in self.practices]

    def issue_award(self, issue: Issue) -> Award | None:
        """The award an issue features, if any."""
        return self.awards.get(issue.award) if issue.award else None
