"""Subscriber lists as files: CSV import with line-numbered problems, CSV / JSON export."""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from comms.core.config import Config
from comms.core.errors import CommsError
from comms.core.names import clean_name
from comms.db.people import NewSubscriber, Subscriber, normalise_address

COLUMNS = ("email", "name", "language", "topics", "regions")
EXPORT_COLUMNS = (
    "email",
    "name",
    "language",
    "topics",
    "regions",
    "status",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
)
#: Languages a subscriber may choose even where no edition is configured (they get the site's).
LANGUAGES = ("de", "en")
#: A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def subscriber_languages(config: Config) -> list[str]:
    """The languages a subscriber may choose: every edition's, then de and en."""
    return [*config.languages, *(lang for lang in LANGUAGES if lang not in config.languages)]


_LIST_SPLIT = re.compile(r"[\s,;|]+")


@dataclass
class Problems:
    """Line-numbered problems found while reading a file."""

    path: str
    lines: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        """Note a problem at a line."""
        self.lines.append((line, message))

    def format(self) -> list[str]:
        """`FILE:LINE: message`, in line order."""
        return [f"{self.path}:{line}: {msg}" for line, msg in sorted(self.lines)]


def split_list(text: str | None) -> list[str]:
    """A list cell (`sprache, arbeit` or `sprache;arbeit` or `sprache arbeit`) as slugs."""
    return [part for part in _LIST_SPLIT.split((text or "").strip().lower()) if part]


def check_person(
    config: Config,
    email: str,
    name: str | None = None,
    language: str | None = None,
    topics: Iterable[str] = (),
    regions: Iterable[str] = (),
) -> NewSubscriber:
    """Validate one person's fields; raises ValueError with a message for the user."""
    try:
        address = normalise_address(email)
    except ValueError as exc:
        raise ValueError(f"invalid e-mail address '{email.strip()}': {exc}") from None
    lang = (language or "").strip().lower() or config.settings.site.language
    allowed = subscriber_languages(config)
    if lang not in allowed:
        raise ValueError(f"unknown language '{lang}' (known: {', '.join(allowed)})")
    chosen: dict[str, tuple[str, ...]] = {}
    for label, values, known in (
        ("topic", topics, config.settings.topics),
        ("region", regions, config.settings.regions),
    ):
        items = tuple(dict.fromkeys(values))
        for item in items:
            if item not in known:
                raise ValueError(f"unknown {label} '{item}' (known: {', '.join(sorted(known))})")
        chosen[label] = items
    return NewSubscriber(
        address,
        clean_name(name) or None,
        lang,
        chosen["topic"],
        chosen["region"],
    )


def _lines(handle: BinaryIO, problems: Problems) -> Iterator[str]:
    """Decoded lines; a line that is not UTF-8 is reported and replaced by an empty one."""
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.add(number, f"not UTF-8 text (byte {exc.start + 1} of the line); skipped")
            yield "\n"


def read_csv(path: Path, config: Config, problems: Problems) -> Iterator[tuple[int, NewSubscriber]]:
    """Valid rows of a subscriber CSV with their line numbers; bad rows go to `problems`.

    The header row needs `email`; `name`, `language`, `topics`, `regions` are optional. Comma
    and semicolon (German spreadsheets) both work; a UTF-8 byte order mark is ignored.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CommsError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        lines = _lines(handle, problems)
        first = next(lines, "")
        delimiter = ";" if first.count(";") > first.count(",") else ","
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter), [])]
        if "email" not in header:
            raise CommsError(f"{problems.path}:1: the header row has no 'email' column")
        for extra in (h for h in header if h not in COLUMNS):
            problems.add(1, f"warning: unknown column '{extra}' ignored")
        reader = csv.reader(lines, delimiter=delimiter)
        seen: dict[str, int] = {}
        line = 2
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.add(line, f"cannot read the row: {exc}")
                row = []
            start, line = line, reader.line_num + 2
            if not any(cell.strip() for cell in row):
                continue
            if any(cell.strip() for cell in row[len(header) :]):
                # e.g. an unquoted "Müller, Hans": the cells would land in the wrong columns
                problems.add(
                    start, f"{len(row)} fields but the header has {len(header)}; row skipped"
                )
                continue
            cells = dict(zip(header, row, strict=False))
            try:
                person = check_person(
                    config,
                    cells.get("email", ""),
                    cells.get("name"),
                    cells.get("language"),
                    split_list(cells.get("topics")),
                    split_list(cells.get("regions")),
                )
            except ValueError as exc:
                problems.add(start, str(exc))
                continue
            if person.email in seen:
                problems.add(start, f"{person.email} repeats line {seen[person.email]}; skipped")
                continue
            seen[person.email] = start
            yield start, person


def defuse_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a leading `'` before a formula start (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _export_row(person: Subscriber) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in EXPORT_COLUMNS:
        value = getattr(person, column)
        if isinstance(value, tuple):
            value = " ".join(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        row[column] = value
    return row


def write_export(people: Iterable[Subscriber], out: TextIO, fmt: str) -> int:
    """Stream subscribers as CSV or JSON (a list of objects); returns how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for person in people:
            writer.writerow({k: defuse_cell(v) for k, v in _export_row(person).items()})
            count += 1
        return count
    out.write("[")
    for person in people:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(_export_row(person), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
