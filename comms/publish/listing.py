"""`comms list`: every item's slug with its status, dates and how many problems `comms check`
finds in its file (and its translations), files with errors included."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from comms.content.models import FOLDERS, Award, Event, Issue, Item, Site
from comms.content.reader import TRANSLATION_NAME, content_files
from comms.content.site import read_site
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.publish.gate import site_problems

#: The status of a file whose front matter does not pass the check (it is not in the site).
INVALID = "invalid"


@dataclass(frozen=True)
class Listed:
    """One item as `comms list` shows it."""

    kind: str
    slug: str
    #: Relative to the config file's folder.
    path: str
    title: str
    #: An issue's draft/ready, an event's planned/cancelled/postponed, `invalid` for a file
    #: with errors, empty for kinds without a status.
    status: str
    #: Its dates by field name (`start`, `send_at` …), ISO 8601 in the site's time zone.
    dates: dict[str, str] = field(default_factory=dict)
    errors: int = 0
    warnings: int = 0
    #: The languages it is translated into.
    translations: list[str] = field(default_factory=list)

    @property
    def when(self) -> str:
        """The date that orders items of its kind (empty if it has none)."""
        for key in ("start", "send_at", "date", "deadline", "published"):
            if key in self.dates:
                return self.dates[key]
        return ""


def _iso(value: date | datetime | None, config: Config) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(config.tz).isoformat(timespec="minutes")
    return value.isoformat()


def _dates(item: Item, config: Config) -> dict[str, str]:
    found: dict[str, date | datetime | None] = {}
    if isinstance(item, Event):
        found = {"start": item.start, "end": item.end}
    elif isinstance(item, Issue):
        found = {"date": item.date, "send_at": item.send_at}
    elif isinstance(item, Award):
        found = {"opens": item.call.opens, "deadline": item.call.deadline}
    found["published"] = item.published
    return {key: text for key, value in found.items() if (text := _iso(value, config))}


def _title(item: Item | None) -> str:
    # Every kind has one (an issue's is its subject); the base class names none.
    return str(getattr(item, "title", "")) if item is not None else ""


def _status(item: Item) -> str:
    status = getattr(item, "status", None)
    return str(status) if status is not None else ""


def list_items(config: Config, kind: str | None = None) -> list[Listed]:
    """Every item (of `kind`, or of every kind), ordered by kind, then by date, newest first,
    then slug; counted with every problem `comms check` reports for its files."""
    site, problems = read_site(config)
    problems = [*problems, *site_problems(config, site)]
    counts = _count(problems, config.content_dir)
    translated = _translations(config.content_dir)
    files, _ = content_files(config.content_dir)
    found: list[Listed] = []
    for path, file_kind in files:
        if kind is not None and file_kind.name != kind:
            continue
        slug = path.stem
        item = _item(site, file_kind.name, slug, path)
        errors, warnings = counts.get(slug_key(file_kind.name, slug), (0, 0))
        relative = path.relative_to(config.root) if path.is_relative_to(config.root) else path
        found.append(
            Listed(
                kind=file_kind.name,
                slug=slug,
                path=relative.as_posix(),
                title=_title(item),
                status=_status(item) if item is not None else INVALID,
                dates=_dates(item, config) if item is not None else {},
                errors=errors,
                warnings=warnings,
                translations=translated.get(slug_key(file_kind.name, slug), []),
            )
        )
    order = [folder_kind.name for folder_kind in FOLDERS.values()]
    found.sort(key=lambda listed: listed.slug)
    found.sort(key=lambda listed: listed.when, reverse=True)
    found.sort(key=lambda listed: order.index(listed.kind))
    return found


def slug_key(kind: str, slug: str) -> str:
    """`kind/slug`, the key of an item and its translations."""
    return f"{kind}/{slug}"


def _item(site: Site, kind: str, slug: str, path: Path) -> Item | None:
    item: Item | None = site.by_kind(kind).get(slug)
    # A duplicate slug: the other file is the one in the site.
    return item if item is not None and item.path == path else None


def _folder_kind(path: Path, content_dir: Path) -> str | None:
    """The kind of a file by its folder under the content folder, if it is in one."""
    try:
        folder = path.relative_to(content_dir).parts[0]
    except (ValueError, IndexError):
        return None
    kind = FOLDERS.get(folder)
    return kind.name if kind is not None else None


def _count(problems: list[ContentError], content_dir: Path) -> dict[str, tuple[int, int]]:
    """(errors, warnings) per `kind/slug`, a translation's counted with its original."""
    counts: dict[str, tuple[int, int]] = {}
    for problem in dict.fromkeys(problems):
        kind = _folder_kind(problem.path, content_dir)
        if kind is None:
            continue
        match = TRANSLATION_NAME.match(problem.path.name)
        key = slug_key(kind, match["slug"] if match else problem.path.stem)
        errors, warnings = counts.get(key, (0, 0))
        counts[key] = (errors, warnings + 1) if problem.warning else (errors + 1, warnings)
    return counts


def _translations(content_dir: Path) -> dict[str, list[str]]:
    """The languages of the translation files beside each original, by `kind/slug`."""
    found: dict[str, list[str]] = {}
    for path in sorted(content_dir.rglob("*.md")) if content_dir.is_dir() else ():
        match = TRANSLATION_NAME.match(path.name)
        kind = _folder_kind(path, content_dir)
        if match and kind is not None:
            found.setdefault(slug_key(kind, match["slug"]), []).append(match["language"])
    return found
