"""New content files from comms/templates/archetypes/: their names in the sample's patterns and
their text (`comms new` and the desk's "new" forms both make them here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from comms.content.models import KINDS, Site
from comms.content.reader import SLUG_RE, slugify
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.publish.templating import TEMPLATES

#: A year in a title or at the end of a slug.
_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_SERIES_RE = re.compile(r"^(.+)-(?:19|20)\d\d$")


def _yaml_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _award_year(title: str, day: date) -> int:
    """The year an award is for: the one its title names, else the deadline's."""
    found = _YEAR_RE.findall(title)
    return int(found[-1]) if found else day.year


def _award_stem(title: str, year: int, folder: Path) -> str:
    """`<series>-<year>` as the sample names awards (`sonderpreis-2020`): the series is that of
    an existing award whose name the title starts with, else the title without its year."""
    slug = slugify(_YEAR_RE.sub(" ", title)) or slugify(title)
    existing = (p.stem for p in folder.rglob("*.md")) if folder.is_dir() else iter(())
    series = {m.group(1) for stem in existing if (m := _SERIES_RE.match(stem.split(".")[0]))}
    known = [s for s in series if slug == s or slug.startswith(s + "-")]
    name = max(known, key=len) if known else slug
    return f"{name}-{year}"


def file_stem(kind: str, title: str, day: date, folder: Path) -> str:
    """The file name (without .md) in the sample's patterns: events and issues dated, awards
    by series and year."""
    slug = slugify(title)
    if kind == "award":
        return _award_stem(title, _award_year(title, day), folder)
    if kind == "event":
        return f"{day.isoformat()}-{slug}"[:80].strip("-")
    if kind == "issue":
        # One issue a month is the rule (2020-04-newsletter); a second one gets the day.
        monthly = f"{day:%Y-%m}-newsletter"
        exists = (folder / f"{monthly}.md").exists()
        return f"{day.isoformat()}-newsletter" if exists else monthly
    return slug


def _next_number(site: Site, folder: Path) -> int:
    """One above every issue number, counting files that do not pass the check yet."""
    numbers = {issue.number for issue in site.issues.values()}
    for path in folder.rglob("*.md") if folder.is_dir() else ():
        match = re.search(r"^number:\s*(\d+)\s*$", path.read_text("utf-8", "replace"), re.M)
        if match:
            numbers.add(int(match.group(1)))
    return max(numbers, default=0) + 1


@dataclass(frozen=True)
class NewFile:
    """Where a new content file goes and what it holds."""

    path: Path
    text: str


def suggested_slug(config: Config, kind: str, title: str, day: date) -> str:
    """The file name (without .md) `comms new` gives an item of `kind` titled `title`."""
    folder = config.content_dir / KINDS[kind].folder
    return file_stem(kind, title, day, folder)


def new_file(
    config: Config, site: Site, kind: str, title: str, day: date, slug: str | None = None
) -> NewFile:
    """The archetype of `kind` filled in for `title` and `day`, named `slug` (default: the
    suggested one); CommsError when no file name can be made or the file exists."""
    if not SLUG_RE.match(slugify(title)):
        raise CommsError(f"cannot make a file name from the title '{title}'")
    folder = config.content_dir / KINDS[kind].folder
    stem = slug or file_stem(kind, title, day, folder)
    if not SLUG_RE.match(stem):
        raise CommsError(f"'{stem}' is not a file name: use a-z, 0-9 and '-' only")
    target = folder / f"{stem}.md"
    if target.exists():
        raise CommsError(f"{target.relative_to(config.root)} already exists; not overwritten")
    env = Environment(loader=FileSystemLoader(TEMPLATES / "archetypes"), keep_trailing_newline=True)
    settings = config.settings
    today = config.now().date()
    text = env.get_template(f"{kind}.md").render(
        title=_yaml_string(" ".join(title.split())),
        today=today.isoformat(),
        date=day.isoformat(),
        year=_award_year(title, day) if kind == "award" else day.year,
        number=_next_number(site, folder),
        regions=", ".join(sorted(settings.regions)),
        topics=", ".join(sorted(settings.topics)),
        example_event=next(iter(sorted(site.events, reverse=True)), "2020-04-16-konferenz"),
        example_award=next(iter(sorted(site.awards, reverse=True)), "sonderpreis-2020"),
    )
    return NewFile(target, text)


def write_new(new: NewFile) -> None:
    """Create the file (never overwrites: CommsError when it appeared meanwhile)."""
    new.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with new.path.open("x", encoding="utf-8") as handle:
            handle.write(new.text)
    except FileExistsError:
        raise CommsError(f"{new.path.name} already exists; not overwritten") from None
