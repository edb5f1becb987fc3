"""The content kinds (Event, Award, Practice, Issue) as typed models, and the KINDS registry."""

from __future__ import annotations

import difflib
import hashlib
import json
import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
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

from comms.content.cadence import CadenceField, HorizonDays
from comms.content.fields import (
    Day,
    Email,
    EventStatus,
    HeaderText,
    Moment,
    SeriesName,
    Text,
    Url,
    When,
    instant,
    status_word,
)
from comms.core.settings import _Section, settings_text


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, str_strip_whitespace=True, defer_build=True
    )

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
    #: What the picture shows, under it (optional).
    caption: Text | None = None
    #: Who took the picture (photo credits are a legal need): "Foto: NAME" under it.
    credit: Text | None = None

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
    #: The series the event belongs to (`integrationsdialog`): an issue that shows two or more
    #: events of one series shows them as one table of dates (`series_blocks`).
    series: SeriesName | None = None

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


class IssueStatus(StrEnum):
    """Where an issue stands: only a `ready` one may go to the list (proofs go for both)."""

    DRAFT = "draft"
    READY = "ready"


class Issue(Item):
    """One newsletter edition."""

    kind: ClassVar[str] = "issue"

    number: int
    subject: HeaderText
    preheader: HeaderText
    date: Day
    send_at: Moment | None = None
    status: Annotated[IssueStatus, BeforeValidator(status_word)] = IssueStatus.DRAFT
    events: list[Text] = []
    upcoming_events_days: int | None = None
    practices: list[Text] = []
    award: Text | None = None
    topics: list[Topic] = []
    regions: list[Region] = []
    #: The digest that composed this issue (content/digests/<slug>.md): its items are shown in
    #: sections per region, each subscriber only their regions' (comms.publish.digest_sections).
    from_digest: Text | None = None
    #: What the digest run showed, `kind/slug` → its state (start and status): the record of
    #: "nothing twice" that later runs of the digest read (comms.publish.digest_compose).
    digest_items: dict[str, str] = {}

    @property
    def title(self) -> str:
        """Issues are titled by their subject."""
        return self.subject

    @property
    def summary(self) -> str:
        """Issues are summarised by their preheader."""
        return self.preheader


def _time_of_day(value: Any) -> Any:
    """`07:00` as a time; YAML reads an unquoted 07:00 as the sexagesimal number 420."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        hour, colon, minute = value.strip().partition(":")
        if colon and hour.isdigit() and minute.isdigit():
            try:
                return time(int(hour), int(minute))
            except ValueError:
                pass
        raise ValueError(f"expected a time of day like 07:00, got '{value}'")
    return value


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
DigestKind = Literal["events", "practices", "awards"]
#: What a digest's subject and preheader may name: `{date}` (16.04.2020), `{month}` (April 2020).
DIGEST_PLACEHOLDERS = frozenset({"date", "month"})


def _pattern(value: str) -> str:
    for name in re.findall(r"\{([^{}]*)\}", value):
        if name not in DIGEST_PLACEHOLDERS:
            known = ", ".join(f"{{{n}}}" for n in sorted(DIGEST_PLACEHOLDERS))
            raise ValueError(f"unknown placeholder '{{{name}}}' (known: {known})")
    return value


Pattern = Annotated[HeaderText, AfterValidator(_pattern)]


class Digest(Item):
    """A regional digest: which items, where, how far ahead and how often an issue is composed
    of them (`comms digest run`, the scheduler); the body is the issue's intro text."""

    kind: ClassVar[str] = "digest"

    title: Text
    kinds: Annotated[list[DigestKind], Field(min_length=1)]
    #: The regions it covers (none: every region); each gets a section of its own.
    regions: list[Region] = []
    #: Only items with one of these topics (none: every topic).
    topics: list[Topic] = []
    #: The region whose items every reader gets, whatever regions they chose.
    statewide: Region = "landesweit"
    horizon: HorizonDays
    cadence: CadenceField
    #: When on a run day the issue is composed, and when it is due to go out (its `send_at`).
    compose_at: TimeOfDay = time(7, 0)
    send_at: TimeOfDay | None = None
    subject: Pattern
    preheader: Pattern
    #: The status of the issues it composes: `draft` waits for an editor, `ready` goes out.
    status: Annotated[IssueStatus, BeforeValidator(status_word)] = IssueStatus.DRAFT
    #: Fewer new or changed items than this: no issue at all.
    min_items: Annotated[int, Field(ge=1)] = 1


@dataclass(frozen=True)
class Series:
    """Events of one series that an issue shows together, soonest first."""

    kind: ClassVar[str] = "series"

    name: str
    events: list[Event]

    @property
    def title(self) -> str:
        """`integrationsdialog` → `Integrationsdialog`, `werkstatt-frauen` → `Werkstatt Frauen`."""
        return " ".join(word[:1].upper() + word[1:] for word in self.name.split("-"))


def series_blocks(events: list[Event], tz: ZoneInfo) -> list[Event | Series]:
    """The events as an issue shows them: two or more of one series become one `Series` (at the
    place of its first), every other event stays itself."""
    counts = Counter(event.series for event in events if event.series)
    blocks: list[Event | Series] = []
    done: set[str] = set()
    for event in events:
        if not event.series or counts[event.series] < 2:
            blocks.append(event)
        elif event.series not in done:
            done.add(event.series)
            members = [other for other in events if other.series == event.series]
            members.sort(key=lambda other: (other.start_at(tz), other.slug))
            blocks.append(Series(event.series, members))
    return blocks


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
#: Digest definitions are content but not a published kind: no pages, feeds or archetype.
DIGEST = Kind("digest", "digests", Digest, N_("Digest"), N_("Digests"))
FOLDERS: dict[str, Kind] = {kind.folder: kind for kind in [*KINDS.values(), DIGEST]}


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
    digests: dict[str, Digest] = field(default_factory=dict)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Berlin"))
    #: Issues whose mails have started to go out (from the send ledger; the caller sets it,
    #: since content and publish never read the database): public from then on.
    sent: frozenset[str] = frozenset()
    #: Issues with a `send_at` become public only when their send starts, not when their
    #: `send_at` passes (`delivery.require_approval`; set with `sent` by the caller).
    public_on_send: bool = False
    #: Translations by language, then `kind/slug` (comms.content.translation_files reads them).
    translations: dict[str, dict[str, Item]] = field(default_factory=dict)
    #: Each item's digest by the item's id, with the item (so the id is not reused): `digest`.
    _digests: dict[int, tuple[BaseModel, bytes]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: `_timeline`'s rows with the time zone and the event objects they were made from.
    _timeline_of: tuple[ZoneInfo, list[Event], list[tuple[datetime, datetime, Event]]] | None = (
        field(default=None, init=False, repr=False, compare=False)
    )

    def read_from(self, item: BaseModel, source: str) -> None:
        """Note that `item` is what reading `source` gives: the content cache's key of its file
        (its bytes, path, kind, reading context and the reader's code, everything the item is
        made from), which then stands for the item in `digest`."""
        self._digests[id(item)] = (item, b"S" + bytes.fromhex(source))

    def digest(self, item: BaseModel) -> bytes:
        """A digest that changes whenever `item` does, made once per item object (items are
        frozen, and a build digests each several times: its record's inputs twice, the page
        cache): its source's (`read_from`), else its JSON's SHA-256 (settings: their text's,
        `settings_text`)."""
        known = self._digests.get(id(item))
        if known is None or known[0] is not item:
            if isinstance(item, _Section):
                # Settings a page is made from: by their text, since their JSON would build
                # the whole settings schema that settings kept in var/ spare a build.
                made = b"T" + hashlib.sha256(settings_text(item).encode()).digest()
            else:
                try:
                    text = item.model_dump_json().encode()
                except ValueError:  # lone surrogates, which only the slow path can carry
                    text = json.dumps(item.model_dump(mode="json"), sort_keys=True).encode()
                made = b"J" + hashlib.sha256(text).digest()
            known = self._digests[id(item)] = (item, made)
        return known[1]

    def by_kind(self, kind: str) -> dict[str, Any]:
        """The items of one kind, keyed by slug."""
        folder = next(k.folder for k in FOLDERS.values() if k.name == kind)  # digests too
        found: dict[str, Any] = getattr(self, folder)
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
        limit = now + timedelta(days=days) if days is not None else None
        found = []
        for start, end, event in self._timeline(self.tz):
            if limit is not None and start > limit:
                break
            if end > now:
                found.append(event)
        return found

    def _timeline(self, tz: ZoneInfo) -> list[tuple[datetime, datetime, Event]]:
        """Every event with its start and end at `tz`, soonest first (then by slug): made once
        while the events are the same objects, since a build asks for upcoming events once per
        issue and edition and each instant costs a time zone lookup."""
        events = list(self.events.values())
        kept = self._timeline_of
        if (
            kept is not None
            and kept[0] is tz
            and len(kept[1]) == len(events)
            and all(map(operator.is_, kept[1], events))
        ):
            return kept[2]
        rows = sorted(
            ((event.start_at(tz), event.end_at(tz), event) for event in events),
            key=lambda row: (row[0], row[2].slug),
        )
        self._timeline_of = (tz, events, rows)
        return rows

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
