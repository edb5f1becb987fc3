"""content/ → (site, errors): front matter with line marks, safe HTML, validation, links."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from comms.content.content_cache import ContentCache, pickled
from comms.content.fields import instant, parse_when
from comms.content.front_matter import (
    Doc,
    duplicate_keys,
    error_message,
    parse_yaml,
    split,
    unknown_keys,
)
from comms.content.markup import markdown_problems, markdown_to_html
from comms.content.models import (
    DIGEST,
    FOLDERS,
    KINDS,
    Award,
    Event,
    Issue,
    Item,
    Kind,
    Site,
    front_matter_fields,
)
from comms.core.collector import batch
from comms.core.errors import ContentError
from comms.core.files import path_order
from comms.core.forked import forked_map

#: How archetypes mark what an editor must replace: `[[Veranstaltungsort]]`.
PLACEHOLDER_RE = re.compile(r"\[\[[^\[\]\n]+\]\]")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: What reading one file gives: its item (None when it has errors) and its problems.
Read = tuple[Item | None, list[ContentError]]
#: Fewer files to read than this (of those the content cache lacks) are read in this process:
#: starting workers costs more.
PARALLEL_READ_FROM = 500
#: Files per task of a reading shared out: small tasks, so the workers end together.
READ_TASK = 100
#: A translation beside its original: `<slug>.<language>.md`
#: (read by comms.content.translation_files).
TRANSLATION_NAME = re.compile(
    r"^(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<language>[a-z]{2,3}(?:-[a-z0-9]{1,8})*)\.md$"
)
#: The front matter key of a translation that records the digest of its original.
TRANSLATED = "original_digest"
_IMG_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
#: An event's file name that begins with a date (`2020-04-16-konferenz.md`), as `comms new`
#: names it: the date should be the event's start.
_NAMED_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})-")
_ALT_RE = re.compile(r"""\balt\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)
_SRC_RE = re.compile(r"""\bsrc\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)


def slugify(title: str) -> str:
    """A file-name slug from a German title: umlauts transliterated, ASCII, hyphens."""
    text = title.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return "-".join(words)[:80].strip("-")


def _image_errors(html: str, body: str, body_line: int, path: Path) -> list[ContentError]:
    errors = []
    for tag in _IMG_RE.findall(html):
        alt = _ALT_RE.search(tag)
        if alt and (alt.group(2) or alt.group(3) or "").strip():
            continue
        src_match = _SRC_RE.search(tag)
        src = (src_match.group(2) or src_match.group(3) or "") if src_match else ""
        line = body_line
        for offset, text in enumerate(body.splitlines()):
            if src and src in text:
                line = body_line + offset
                break
        errors.append(ContentError(path, line, f"image without alt text: '{src}'"))
    return errors


#: Texts of the archetypes before they marked placeholders with `[[…]]`: files made with them
#: still carry these lines (a whole value or line, compared without quotes and case).
OLD_ARCHETYPE_TEXTS = frozenset(
    {
        "hier steht das editorial.",
        "veranstaltungsort",
        "straße nr., plz ort",
        "ein oder zwei sätze, worum es geht.",
        "ein satz, der den inhalt dieser ausgabe ehrlich zusammenfasst.",
        "beschreibung der veranstaltung: programm, zielgruppe, anmeldung.",
        "name der initiative",
        "ein oder zwei sätze, was das projekt vorbildlich macht.",
        "die geschichte des projekts: wer, was, wie, mit welchem ergebnis.",
        "ein oder zwei sätze zum sonderpreis.",
        "worum es beim sonderpreis geht, wer sich bewerben kann und wie.",
    }
)


def _old_archetype_text(line: str) -> str | None:
    text = line.strip()
    candidates = [text]
    key, colon, value = text.partition(": ")
    if colon and key.replace("_", "").isalnum():
        candidates.append(value)
    for candidate in candidates:
        bare = candidate.strip().strip("\"'").strip()
        if bare.lower() in OLD_ARCHETYPE_TEXTS:
            return bare
    return None


def placeholder_errors(text: str, path: Path) -> list[ContentError]:
    """An error for every archetype placeholder (`[[…]]`, or a line of an older archetype)
    left in a file, at its line."""
    errors: list[ContentError] = []
    lowered = text.lower()  # as `_old_archetype_text` compares: a match is in here too
    if "[[" not in text and not any(old in lowered for old in OLD_ARCHETYPE_TEXTS):
        return errors  # nothing to find: most files, and walking their lines cost as much
    for number, line in enumerate(text.splitlines(), start=1):
        for match in PLACEHOLDER_RE.finditer(line):
            message = f"placeholder from the archetype not replaced: {match.group()}"
            errors.append(ContentError(path, number, message))
        old = _old_archetype_text(line)
        if old is not None:
            message = f"text from the archetype not replaced: '{old}'"
            errors.append(ContentError(path, number, message))
    return errors


def _moment(value: Any, tz: ZoneInfo, end: bool = False) -> datetime | None:
    """A front matter date or date-time as an instant (an all-day end is the next midnight)."""
    if value is None:
        return None
    try:
        return instant(parse_when(value, tz), tz, end)
    except (ValueError, TypeError):
        return None  # the field's own error says what is wrong with it


def _shown_when(value: Any, tz: ZoneInfo) -> str:
    """A front matter date or date-time as an editor writes it (local time), for messages."""
    when = parse_when(value, tz)
    if not isinstance(when, datetime):
        return when.isoformat()
    local = when.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def _semantic(
    kind: Kind, data: dict[str, Any], doc: Doc, path: Path, tz: ZoneInfo, original: bool = True
) -> list[ContentError]:
    """Checks across fields, on the raw front matter, so they run beside every field error
    (`original`: the file is not a translation, whose dates are its original's)."""
    errors: list[ContentError] = []

    def add(loc: tuple[Any, ...], message: str, warning: bool = False) -> None:
        line, dotted = doc.find(loc)[0], ".".join(map(str, loc))
        errors.append(ContentError(path, line, message, field=dotted, warning=warning))

    if kind.model is Event:
        start = _moment(data.get("start"), tz)
        end = _moment(data.get("end"), tz, end=True)
        if start is not None and end is not None and end < start:
            begins, ends = _shown_when(data["start"], tz), _shown_when(data["end"], tz)
            add(("end",), f"the event ends before it starts (start {begins}, end {ends})")
        named = _NAMED_DATE.match(path.name)
        if original and start is not None and named is not None:
            day = start.astimezone(tz).date().isoformat()
            if named.group(1) != day:
                add(
                    ("start",),
                    f"the event starts on {day}, but its file name says {named.group(1)}: "
                    "rename the file or correct the date",
                    warning=True,
                )
        if data.get("location") is None and data.get("online") is None:
            add(("location",), "required field is missing (or give 'online')")
    call = data.get("call")
    if kind.model is Award and isinstance(call, dict):
        opens, deadline = _moment(call.get("opens"), tz), _moment(call.get("deadline"), tz)
        if opens is not None and deadline is not None and deadline < opens:
            add(("call", "deadline"), "the deadline is before the call opens")
    return errors


@functools.cache
def _fields(model: type[Item]) -> list[str]:
    """`front_matter_fields`, worked out once per model rather than for every file read."""
    return front_matter_fields(model)


def read_file(
    path: Path,
    kind: Kind,
    context: dict[str, Any],
    original: tuple[str, dict[str, Any]] | None = None,
) -> Read:
    """Read one content file; never raises for bad content, returns the errors instead.

    A translation passes `original`: its slug and front matter, which the translation's keys
    override (comms.content.translation_files). Through the content cache, files are read by
    `read_content` (`_read_all`)."""
    raw = _raw(path)
    return _read_bytes(path, raw, kind, context, original) if isinstance(raw, bytes) else raw


@dataclass(frozen=True)
class _Unread:
    """A file the content cache lacks: its bytes and the name of their entry."""

    raw: bytes
    key: str


def _raw(path: Path) -> bytes | Read:
    """The bytes of `path`, or the result of a file that cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        return None, [ContentError(path, 1, f"cannot read file: {exc.strerror}")]


def _from_cache(
    path: Path, kind: Kind, context: dict[str, Any], cache: ContentCache
) -> Read | _Unread:
    """`path` as `cache` has it, else its bytes to read (`_Unread`)."""
    # Stamped before reading: a change while it is read shows in the next stamp.
    stamped, known = cache.stamped(path, kind.name, context)
    cached = None if known is None else cache.get(known, path)
    if known is not None and cached is not None:
        cache.note(stamped, known)
        cache.sources[str(path)] = known
        return cached
    raw = _raw(path)
    if not isinstance(raw, bytes):
        return raw
    key = cache.key(path, raw, kind.name, context)
    cache.note(stamped, key)
    cache.sources[str(path)] = key
    cached = cache.get(key, path)
    return _Unread(raw, key) if cached is None else cached


def _read_all(
    files: list[tuple[Path, Kind]],
    context: dict[str, Any],
    cache: ContentCache | None,
    processes: int,
) -> list[Read]:
    """What reading each of `files` gives: through `cache`, the files it lacks read by
    `processes` forked workers when they are many (a cold build's), else here."""
    if cache is None:
        return [read_file(path, kind, context) for path, kind in files]
    found = [_from_cache(path, kind, context, cache) for path, kind in files]
    unread = [n for n, got in enumerate(found) if isinstance(got, _Unread)]
    made: dict[int, bytes | None] = {}
    if len(unread) >= PARALLEL_READ_FROM:
        tasks = [unread[at : at + READ_TASK] for at in range(0, len(unread), READ_TASK)]

        def job(task: list[int]) -> list[bytes | None]:
            """The entries of the files numbered `task`, read in a worker."""
            entries = []
            for n in task:
                (path, kind), got = files[n], found[n]
                assert isinstance(got, _Unread)
                entries.append(pickled(_read_bytes(path, got.raw, kind, context, None), path))
            return entries

        shared = forked_map(job, tasks, processes)
        if shared is not None:
            for task, entries in zip(tasks, shared, strict=True):
                made.update(zip(task, entries, strict=True))
    results: list[Read] = []
    for n, ((path, kind), got) in enumerate(zip(files, found, strict=True)):
        if isinstance(got, _Unread):
            entry = made.get(n)
            result = None if entry is None else cache.adopt(got.key, entry, path)
            if result is None:  # read here: not shared out, or a result that does not pickle
                result = _read_bytes(path, got.raw, kind, context, None)
                cache.put(got.key, result, path)
            got = result
        results.append(got)
    return results


def _read_bytes(
    path: Path,
    raw: bytes,
    kind: Kind,
    context: dict[str, Any],
    original: tuple[str, dict[str, Any]] | None,
) -> Read:
    """Read one content file's bytes (read_file without its cache)."""
    errors: list[ContentError] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 1].hex()
        return None, [ContentError(path, line, f"not valid UTF-8 (byte 0x{bad}); save as UTF-8")]
    # NFC: a decomposed "ü" would otherwise differ from the composed one in slugs and subjects.
    text = unicodedata.normalize("NFC", text.removeprefix("\ufeff"))
    slug = path.stem if original is None else original[0]
    if not SLUG_RE.match(slug):
        errors.append(
            ContentError(
                path, 1, f"file name '{path.name}' is not a slug: use a-z, 0-9 and '-' only"
            )
        )
    parts = split(text, path)
    if isinstance(parts, ContentError):
        return None, [*errors, parts]
    front, body, body_line = parts
    parsed = parse_yaml(front, path)
    if isinstance(parsed, ContentError):
        # The front matter cannot be read; the body and the placeholders still can.
        _, body_errors = _body(body, body_line, path, context.get("language", "de"))
        return None, [*errors, parsed, *body_errors, *placeholder_errors(text, path)]
    data, doc = parsed
    duplicate_keys(doc, doc.node, path, errors)
    fields = _fields(kind.model)
    if original is not None:
        data.pop(TRANSLATED, None)
    for loc, dotted in unknown_keys(kind.model, data, (), fields):
        message = f"unknown key '{dotted}'"
        if len(loc) == 1:
            data.pop(loc[0])
            close = difflib.get_close_matches(str(loc[0]), fields, n=1, cutoff=0.75)
            message += f"; did you mean '{close[0]}'?" if close else ""
        errors.append(ContentError(path, doc.find(loc)[0], message, warning=True))
    if original is not None:
        data = {**original[1], **data}
    errors.extend(_semantic(kind, data, doc, path, context["tz"], original is None))
    # Body and placeholder checks run beside the field errors: one run shows every error.
    html, body_errors = _body(body, body_line, path, context.get("language", "de"))
    errors.extend(body_errors)
    errors.extend(placeholder_errors(text, path))
    try:
        item = kind.model.model_validate(data, context=context)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            line, _ = doc.find(loc)
            name = ".".join(str(p) for p in loc if not isinstance(p, int)) or None
            errors.append(ContentError(path, line, error_message(dict(error)), field=name))
        return None, errors
    lines: dict[str, int] = {}
    for key, value in doc.node.value:
        if isinstance(key, yaml.ScalarNode):
            lines[key.value] = doc.line_of(key)
            if isinstance(value, yaml.SequenceNode):
                for index, element in enumerate(value.value):
                    lines[f"{key.value}.{index}"] = doc.line_of(element)
    item = item.model_copy(
        update={"slug": slug, "path": path, "body": body, "html": html, "lines": lines}
    )
    if any(not e.warning for e in errors):
        return None, errors
    return item, errors


def _body(body: str, body_line: int, path: Path, language: str) -> tuple[str, list[ContentError]]:
    """The body as safe HTML and its errors; a body too costly to render is not rendered."""
    try:
        # The conversion checks the limits itself (once per text: it is kept): checking
        # here first did it again for every file.
        html = markdown_to_html(body, language)
    except ValueError:
        too_costly = markdown_problems(body)
        if not too_costly:
            raise
        return "", [ContentError(path, body_line + line - 1, msg) for line, msg in too_costly]
    return html, _image_errors(html, body, body_line, path)


def _reference_error(
    site: Site, broken: dict[tuple[str, str], str], issue: Issue, kind: str, slug: str, key: str
) -> ContentError | None:
    """The error of one reference from `issue` at front matter `key`, or None if it resolves."""
    known = site.by_kind(kind)
    if slug in known:
        return None
    folder = KINDS[kind].folder
    field_name = key.split(".")[0]
    where = broken.get((kind, slug))
    if where is not None:
        # The file exists but has errors: they are listed with it, not hidden as "no event".
        message = f"{where} has errors; see above"
    else:
        message = f"no {kind} '{slug}' in {folder}/"
        candidates = [*known, *(s for k, s in broken if k == kind)]
        close = difflib.get_close_matches(slug, candidates, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean '{close[0]}'?"
    return ContentError(issue.path, issue.line(key), message, field=field_name)


def reference_problems(
    site: Site, broken: dict[tuple[str, str], str], issue: Issue
) -> list[ContentError]:
    """Errors of the events, practices and award an issue names that are not in the site."""
    refs = [("event", slug, f"events.{i}") for i, slug in enumerate(issue.events)]
    refs += [("practice", slug, f"practices.{i}") for i, slug in enumerate(issue.practices)]
    if issue.award:
        refs.append(("award", issue.award, "award"))
    errors = [_reference_error(site, broken, issue, kind, slug, key) for kind, slug, key in refs]
    return [error for error in errors if error is not None]


def markdown_files(content_dir: Path) -> list[Path]:
    """Every `.md` file under `content_dir`, in path order (none if it is not a folder)."""
    if not content_dir.is_dir():
        return []
    return sorted(content_dir.rglob("*.md"), key=path_order)


def content_files(
    content_dir: Path, found: list[Path] | None = None
) -> tuple[list[tuple[Path, Kind]], list[ContentError]]:
    """Every Markdown file under the kind folders, sorted, plus warnings for strays; of
    `found` (`markdown_files`) if the caller listed them already."""
    files: list[tuple[Path, Kind]] = []
    warnings: list[ContentError] = []
    if not content_dir.is_dir():
        return [], []
    depth = len(content_dir.parts)
    for path in markdown_files(content_dir) if found is None else found:
        # The parts below content_dir (every listed path is under it): relative_to costs more.
        below = path.parts[depth:]
        if TRANSLATION_NAME.match(path.name):
            if below[0] == DIGEST.folder:
                message = "a digest has no translations (translate the issues it composes); ignored"
                warnings.append(ContentError(path, 1, message, warning=True))
            continue
        kind = FOLDERS.get(below[0])
        if kind is None or len(below) == 1:
            known = ", ".join(sorted(FOLDERS))
            warnings.append(
                ContentError(path, 1, f"not in a content folder ({known}); ignored", warning=True)
            )
            continue
        files.append((path, kind))
    return files, warnings


@batch()
def read_content(
    content_dir: Path,
    tz: ZoneInfo,
    regions: Iterable[str],
    topics: Iterable[str],
    cache: ContentCache | None = None,
    found: list[Path] | None = None,
    processes: int = 1,
) -> tuple[Site, list[ContentError]]:
    """Read every content file (of `found`, `markdown_files`, if given); return the valid
    items and every problem found.

    With `cache`, unchanged files are taken from it; it keeps what this reading used. Many
    files it lacks are read by `processes` forked workers (0: one per core, `render.workers`)."""
    context = {"tz": tz, "regions": set(regions), "topics": set(topics)}
    site = Site(tz=tz)
    files, errors = content_files(content_dir, found)
    if not content_dir.is_dir():
        errors.append(ContentError(content_dir, 1, "content folder not found"))
    first_seen: dict[tuple[str, str], Path] = {}
    numbers: dict[int, Path] = {}
    broken: dict[tuple[str, str], str] = {}
    for (path, kind), (item, problems) in zip(
        files, _read_all(files, context, cache, processes), strict=True
    ):
        errors.extend(problems)
        if item is None:
            broken.setdefault((kind.name, path.stem), path.relative_to(content_dir).as_posix())
            continue
        key = (kind.name, item.slug)
        if key in first_seen:
            other = first_seen[key].relative_to(content_dir).as_posix()
            errors.append(ContentError(path, 1, f"duplicate slug '{item.slug}' (also {other})"))
            continue
        if isinstance(item, Issue):
            if item.number in numbers:
                other = numbers[item.number].relative_to(content_dir).as_posix()
                errors.append(
                    ContentError(
                        path,
                        item.line("number"),
                        f"issue number {item.number} is also used by {other}",
                        field="number",
                    )
                )
                continue
            numbers[item.number] = path
        first_seen[key] = path
        getattr(site, kind.folder)[item.slug] = item
        source = None if cache is None else cache.sources.get(str(path))
        if source is not None:
            site.read_from(item, source)
    for issue in site.issues.values():
        errors.extend(reference_problems(site, broken, issue))
    if cache is not None:
        cache.save()
    return site, errors
