"""What the desk's writing pages do: a content file's front matter as form fields (dates,
choices from what exists), its problems as `comms check` reports them while it is typed, saving
as a person would (only what changed; errors the file did not have refuse the save), and new
files from the archetypes (`comms new`)."""

from __future__ import annotations

import typing
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from comms.content.fields import EventStatus, parse_when, status_word
from comms.content.front_matter_edit import (
    Change,
    FrontMatter,
    read_front_matter,
    scalar,
    set_values,
    with_body,
)
from comms.content.models import FOLDERS, KINDS, N_, IssueStatus, Kind, front_matter_fields
from comms.content.reader import content_files
from comms.content.site import read_site
from comms.content.source_files import Source, conflict, read_source
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError
from comms.db.desk_accounts import Account
from comms.publish.archetypes import new_file, suggested_slug, write_new
from comms.publish.draft_check import draft_problems
from comms.publish.problem_words import worded
from comms.sending.desk_office import Office, commit_as

#: Keys whose value is a date, a date and time, or either (as the value in the file has it).
DATES = frozenset({"date"})
MOMENTS = frozenset({"send_at", "updated"})
EITHER = frozenset({"start", "end", "published"})
NUMBERS = frozenset({"number", "year", "prize_money", "upcoming_events_days"})
#: What a status word means to an editor (message ids; the file keeps the English value).
STATUS_LABELS = {
    "planned": N_("planned"),
    "cancelled": N_("cancelled"),
    "postponed": N_("postponed"),
    "draft": N_("draft"),
    "ready": N_("ready"),
}
#: An event's statuses, as its field's type names them.
EVENT_STATUS: tuple[str, ...] = typing.get_args(typing.get_args(EventStatus)[0])


@dataclass(frozen=True)
class FormField:
    """One front matter key as a form field."""

    key: str
    #: `text`, `number`, `date`, `datetime`, `one` (a choice) or `many` (checkboxes).
    widget: str
    #: What the field shows: the value (`one`, `text` …) or the values (`many`).
    value: str = ""
    values: tuple[str, ...] = ()
    #: (value, label) of each choice; labels of statuses are message ids.
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Shown:
    """A problem where the desk shows it: at a form field (`key`), at `line` of the text in
    the editor, or at `line` of the file (outside what the form shows)."""

    text: str
    warning: bool
    #: `field`, `text` or `file`.
    place: str
    key: str = ""
    line: int = 0


@dataclass
class Form:
    """A content file as the writing page shows it."""

    kind: str
    slug: str
    source: Source
    #: None when the front matter cannot be read (only the raw editor helps then).
    front: FrontMatter | None
    fields: list[FormField] = field(default_factory=list)
    #: Keys in the file the form cannot show (nested values): the raw editor changes them.
    raw_only: list[str] = field(default_factory=list)
    body: str = ""


class Taken(CommsError):
    """An item of that kind has that name (file name) already."""


class Refused(CommsError):
    """The save would add errors the file did not have; the problems say which."""

    def __init__(self, problems: list[ContentError]) -> None:
        super().__init__(f"{len(problems)} new error(s); not saved")
        self.problems = problems


def _when_text(value: Any, config: Config, widget: str) -> str | None:
    """A date value as a date or datetime-local input shows it; None when it is not one."""
    try:
        parsed = parse_when(value, config.tz)
    except (ValueError, TypeError):
        return None
    if widget == "date":
        return None if isinstance(parsed, datetime) else parsed.isoformat()
    if not isinstance(parsed, datetime):
        return None
    local = parsed.astimezone(config.tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def _text(value: Any) -> str | None:
    """A value a text field can show unchanged; None for mappings, lists and the like."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float | date):
        return None
    return str(value)


class Writing:
    """The writing pages' services over the desk's office."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.config: Config = office.config

    def _choices(self, kind: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
        """Per key with a choice: `one` or `many`, and (value, label) of what exists to choose
        from (the labels of statuses are message ids)."""
        settings = self.config.settings
        site, _ = read_site(self.config)
        regions = sorted(settings.regions.items())
        topics = sorted(settings.topics.items())
        found: dict[str, tuple[str, list[tuple[str, str]]]] = {"region": ("one", regions)}
        found |= {"topics": ("many", topics), "regions": ("many", regions)}
        found["statewide"] = ("one", regions)
        if kind == "issue":
            found["events"] = ("many", _named(site.events, newest_first=True))
            found["practices"] = ("many", _named(site.practices))
            found["award"] = ("one", [("", ""), *_named(site.awards, newest_first=True)])
            found["status"] = ("one", [(s.value, STATUS_LABELS[s.value]) for s in IssueStatus])
        elif kind == "event":
            found["status"] = ("one", [(s, STATUS_LABELS[s]) for s in EVENT_STATUS])
        return found

    def _field(
        self, key: str, value: Any, choices: dict[str, tuple[str, list[tuple[str, str]]]]
    ) -> FormField | None:
        """The form field of one key with its value in the file; None when only the raw
        editor can show it (a nested value, or a date the date field cannot hold)."""
        if key in choices:
            widget, options = choices[key]
            offered = [value for value, _label in options]
            if widget == "many":
                if value is None:
                    value = []
                if not isinstance(value, list) or not all(_text(v) for v in value):
                    return None
                values = tuple(str(v) for v in value)
                # A value that exists nowhere stays a choice (checked): its problem says why.
                extra = [(v, v) for v in values if v not in offered]
                return FormField(key, "many", values=values, options=(*options, *extra))
            text = _text(status_word(value) if key == "status" else value)
            if text is None:
                return None
            extra = [] if text in offered else [(text, text)]
            return FormField(key, "one", value=text, options=(*options, *extra))
        for keys, widget in ((DATES, "date"), (MOMENTS, "datetime")):
            if key in keys:
                shown = "" if value is None else _when_text(value, self.config, widget)
                return FormField(key, widget, shown) if shown is not None else None
        if key in EITHER:
            for widget in ("date", "datetime"):
                shown = "" if value is None else _when_text(value, self.config, widget)
                if shown is not None:
                    return FormField(key, widget, shown)
            return None
        text = _text(value)
        if text is None:
            return None
        return FormField(key, "number" if key in NUMBERS else "text", text)

    def form(self, kind: str, slug: str) -> Form:
        """The item's file as form fields and body (CommsError when there is no such item)."""
        source = self.office.source(kind, slug)
        return self.form_of(kind, slug, source)

    def form_of(self, kind: str, slug: str, source: Source) -> Form:
        """The form over `source` (the file's text, or what was typed into it)."""
        front = read_front_matter(source.text)
        if front is None:
            return Form(kind, slug, source, None)
        choices = self._choices(kind)
        fields: list[FormField] = []
        raw_only: list[str] = []
        # The file's keys in its order, then the kind's other keys (empty, to fill in).
        model = _kind(kind).model
        known = front_matter_fields(model)
        missing = [key for key in known if key not in front.data and _offered(model, key)]
        keys = [*front.data, *missing]
        for key in keys:
            shown = None
            if key in front.slots or key not in front.data:
                shown = self._field(key, front.data.get(key), choices)
            if shown is not None and key in known:
                fields.append(shown)
            elif key in front.data:
                raw_only.append(key)
        return Form(kind, slug, source, front, fields, raw_only, front.body(source.text))

    def compose(self, form: Form, values: Mapping[str, Any]) -> str:
        """The file's text with the form's submitted `values` (`field-KEY`, `body`): only
        the keys whose value changed are written, each as a person would write it."""
        assert form.front is not None
        changes: dict[str, Change] = {}
        for shown in form.fields:
            name = f"field-{shown.key}"
            if name not in values:
                continue  # not in the form that was sent: unchanged
            if shown.widget == "many":
                got = [v for v in _list(values, name) if v]
                if set(got) != set(shown.values):
                    changes[shown.key] = got
                continue
            sent = str(values[name]).replace("\r\n", "\n")
            if sent == shown.value:
                continue
            typed = sent.strip()
            if shown.widget == "datetime":
                typed = typed.replace("T", " ", 1)
            slot = form.front.slots.get(shown.key)
            quote = slot.quote if slot else ""
            # Emptied: `""` where the value was quoted (a text that must not be empty says
            # so), else no value at all (an optional key like `award:` means none).
            changes[shown.key] = scalar(typed, quote) if typed or quote else ""
        text = set_values(form.source.text, form.front, changes)
        body = values.get("body")
        if body is not None:
            front = read_front_matter(text)
            assert front is not None
            text = with_body(text, front, str(body).replace("\r\n", "\n"))
        return text

    def problems(self, kind: str, slug: str, text: str) -> list[ContentError]:
        """What `comms check` would report at the item's file if it held `text`."""
        return draft_problems(self.config, self.office.file(kind, slug), _kind(kind), text)

    def placed(self, form: Form, problems: list[ContentError], raw: bool) -> list[Shown]:
        """Where each problem is shown: at its form field, at its line of the text (of the
        body in the form, of the file in the raw editor), or for the whole file."""
        language = self.config.settings.site.language
        keys = {shown.key for shown in form.fields}
        rows: dict[int, str] = {}
        body_line = 0
        front = form.front
        if front is not None:
            for slot in front.slots.values():
                for row in range(slot.line, max(slot.line, slot.last) + 1):
                    rows[row + 1] = slot.key
            body_line = form.source.text[: front.body_start].count("\n") + 1
        found = []
        for problem in problems:
            text = worded(language, problem.message)
            key = (problem.field or "").split(".")[0] or rows.get(problem.line, "")
            warning = problem.warning
            if raw:
                found.append(Shown(text, warning, "text", line=problem.line))
            elif key in keys and problem.line < body_line:
                found.append(Shown(text, warning, "field", key=key))
            elif body_line and problem.line >= body_line:
                found.append(Shown(text, warning, "text", line=problem.line - body_line + 1))
            else:
                found.append(Shown(text, warning, "file", line=problem.line))
        return found

    def save(self, kind: str, slug: str, text: str, seen: str, account: Account) -> str | None:
        """Save `text` as the item's file (Office.save: the version check, the commit as
        `account`); None when it is what the file holds already. Refused when it has errors
        the file has not (a save may keep errors, never add one: an archetype's placeholders
        are replaced one at a time)."""
        text = text.replace("\r\n", "\n")
        current = self.office.source(kind, slug)
        if current.digest != seen:
            raise conflict(self.office.file(kind, slug))
        if text == current.text:
            return None
        new = [p for p in self.problems(kind, slug, text) if not p.warning]
        old = Counter(p.message for p in self.problems(kind, slug, current.text) if not p.warning)
        added = []
        for problem in new:
            if old[problem.message] > 0:
                old[problem.message] -= 1
            else:
                added.append(problem)
        if added:
            raise Refused(added)
        return self.office.save(kind, slug, text, seen, account)

    def suggest(self, kind: str, title: str, day: date) -> str:
        """The file name `comms new` would give (without .md)."""
        return suggested_slug(self.config, kind, title, day)

    def refuse_taken(self, kind: str, slug: str) -> None:
        """CommsError when an item of `kind` is named `slug` already (in any subfolder)."""
        files, _ = content_files(self.config.content_dir)
        if any(found.name == kind and path.stem == slug for path, found in files):
            raise Taken(f"a {kind} '{slug}' exists already")

    def create(self, kind: str, title: str, day: date, slug: str, account: Account) -> str:
        """Make the item's file from its archetype as `comms new` does (named `slug`, or the
        suggested name), commit it as `account`; its slug. CommsError says why not."""
        if kind not in KINDS:
            raise CommsError(f"no kind '{kind}'")
        stem = slug or self.suggest(kind, title, day)
        self.refuse_taken(kind, stem)
        site, _ = read_site(self.config)
        made = new_file(self.config, site, kind, title, day, stem)
        write_new(made)
        content = self.config.content_dir
        message = f"Add {made.path.relative_to(content)} on the desk"
        commit = commit_as(account, content, made.path, message)
        detail = f"commit {commit}" if commit else "no git repository"
        digest = read_source(made.path).digest
        self.office.accounts.audit(account.name, "create", f"{kind}/{stem}", digest, detail)
        return stem


def _kind(name: str) -> Kind:
    """The kind named `name` (digests too: they are content files the desk lists)."""
    return next(kind for kind in FOLDERS.values() if kind.name == name)


#: Keys a form does not offer to add: written by `comms digest run`, not by hand.
NOT_BY_HAND = frozenset({"from_digest", "digest_items"})


def _offered(model: type[BaseModel], key: str) -> bool:
    """Whether a form offers the key when the file lacks it: a value of one line (text, a
    date, a number, a list of names), not a nested one (a place, an image, the winners)."""
    if key in NOT_BY_HAND:
        return False
    pending = [model.model_fields[key].annotation]
    while pending:
        annotation = pending.pop()
        if typing.get_origin(annotation) is dict:
            return False
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return False
        pending.extend(typing.get_args(annotation))
    return True


def _named(items: Mapping[str, Any], newest_first: bool = False) -> list[tuple[str, str]]:
    """(slug, "title (slug)") of items, by slug (dated slugs: newest first if asked)."""
    return [(slug, f"{items[slug].title} ({slug})") for slug in sorted(items, reverse=newest_first)]


def _list(values: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(values, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist(name)]
    found = values.get(name, [])
    return [str(v) for v in found] if isinstance(found, list) else [str(found)]
