"""The content kinds (Event, Award, Practice, Issue) as typed models, and the KINDS registry."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

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


def _parse_date(text: str) -> date | None:
    for pattern, order in ((_DATE_RE, (0, 1, 2)), (_DE_DATE_RE, (2, 1, 0))):
        match = pattern.match(text)
        if match:
            parts = [int(g) for g in match.groups()]
            try:
                return date(parts[order[0]], parts[order[1]], parts[order[2]])
            except ValueError:
                return None
    return None


def parse_when(value: Any, tz: ZoneInfo, allow_date: bool = True) -> date | datetime:
    """Parse a date (`2020-04-16`, `16.04.2020`) or a local date-time (`2020-04-16 10:00`)."""
    wanted = "a date" if allow_date else "a date and time (YYYY-MM-DD HH:MM)"
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
        raise ValueError(f"expected {wanted}, got '{value}'") from None
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
        raise ValueError(f"expected an absolute http(s) URL, got '{value}'")
    return text


def _text(value: Any) -> Any:
    # YAML turns `title: 2019` into an int; a title may well be a number.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


When = Annotated[date | datetime, BeforeValidator(_when)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Day = Annotated[date, BeforeValidator(_day)]
Url = Annotated[str, BeforeValidator(_url)]
Text = Annotated[str, BeforeValidator(_text)]


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
    email: Text | None = None
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
            raise ValueError(f"unknown {label} '{value}' (known: {', '.join(sorted(allowed))})")
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
    status: Literal["planned", "cancelled", "postponed"] = "planned"
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
    subject: Text
    preheader: Text
    date: Day
    send_at: Moment | None = None
    status: Literal["draft", "ready"] = "draft"
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
    #: Translations by language, then `kind/slug` (comms.content.translations reads them).
    translations: dict[str, dict[str, Item]] = field(default_factory=dict)

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
