"""Translations beside their originals (`content/<kind>/<slug>.<lang>.md`) and editions of a site.

A translation carries the translated fields and body; every other field comes from its
original, whose language is the site's. Fields that say when, where and what is linked must
not differ from the original, and a digest of the original's wording recorded in the
translation (`original_digest:`) tells when the original changed after the translation was
written.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from comms.content.front_matter import Doc, parse_yaml, split
from comms.content.models import FOLDERS, KINDS, Item, Kind, Site, front_matter_fields
from comms.content.reader import TRANSLATED, TRANSLATION_NAME, markdown_files, read_file
from comms.core.errors import ContentError
from comms.core.languages import Edition

#: Per kind, the fields a translation may repeat but must not change: dates, places, slugs,
#: references and numbers (the title, summary, body and other wording are the translator's).
FIXED: dict[str, tuple[str, ...]] = {
    "event": (
        "start",
        "end",
        "location",
        "online",
        "registration",
        "status",
        "series",
        "region",
        "topics",
        "published",
    ),
    "award": ("year", "prize_money", "call", "ceremony", "published"),
    "practice": ("region", "topics", "city", "url", "contact", "published"),
    "issue": (
        "number",
        "date",
        "send_at",
        "status",
        "events",
        "upcoming_events_days",
        "practices",
        "award",
        "topics",
        "regions",
        "published",
        "from_digest",
        "digest_items",
    ),
}
#: How many hex digits of the SHA-256 a translation records (enough to tell versions apart).
DIGEST_LENGTH = 16


#: Fields that are no wording but not the translation's either (the feed's change time).
UNWORDED = ("updated",)


def _text(path: Path) -> str:
    """A file's text as digests read it: NFC, without a BOM."""
    text = path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
    return unicodedata.normalize("NFC", text)


def legacy_digest(path: Path) -> str:
    """The digest translations recorded before it covered the wording only: the whole file."""
    return hashlib.sha256(_text(path).encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def digest(path: Path) -> str:
    """The digest of an original as a translation records it: of what a translator translates,
    the body and the front matter without the fixed fields (dates, places, references,
    `send_at`, `status` …), so that changing those leaves its translations current. A file
    whose front matter cannot be read is digested whole."""
    text = _text(path)
    kind = FOLDERS.get(path.parent.name)
    parts = split(text, path)
    parsed = parse_yaml(parts[0], path) if not isinstance(parts, ContentError) else parts
    if kind is None or isinstance(parts, ContentError) or isinstance(parsed, ContentError):
        return legacy_digest(path)
    skip = set(FIXED[kind.name]) | set(UNWORDED)
    wording = {key: value for key, value in parsed[0].items() if str(key) not in skip}
    front = json.dumps(wording, sort_keys=True, ensure_ascii=False, default=str)
    data = f"{front}\0{parts[1]}".encode()
    return hashlib.sha256(data).hexdigest()[:DIGEST_LENGTH]


@dataclass(frozen=True)
class TranslationFile:
    """A file named like a translation: its original's slug, its language and its kind."""

    path: Path
    kind: Kind
    slug: str
    language: str

    @property
    def original(self) -> Path:
        """Where the original lives."""
        return self.path.with_name(f"{self.slug}.md")


def translation_files(content_dir: Path, listed: list[Path] | None = None) -> list[TranslationFile]:
    """Every `<slug>.<lang>.md` under the kind folders, sorted; of `listed`
    (`reader.markdown_files`) if the caller listed them already."""
    found = []
    if not content_dir.is_dir():
        return []
    depth = len(content_dir.parts)
    for path in markdown_files(content_dir) if listed is None else listed:
        match = TRANSLATION_NAME.match(path.name)
        if not match:
            continue
        below = path.parts[depth:]  # every listed path is under content_dir
        kind = FOLDERS.get(below[0])
        # Digests are not published: their issues are translated, not their definitions.
        if kind is not None and kind.name in KINDS and len(below) > 1:
            found.append(TranslationFile(path, kind, match["slug"], match["language"]))
    return found


def _front_matter(path: Path) -> tuple[dict[str, Any], Doc] | None:
    """The parsed front matter of a file and its node map, or None when it does not parse."""
    try:
        text = unicodedata.normalize("NFC", path.read_text("utf-8").removeprefix("\ufeff"))
    except (OSError, UnicodeDecodeError):
        return None
    parts = split(text, path)
    if isinstance(parts, ContentError):
        return None
    parsed = parse_yaml(parts[0], path)
    return None if isinstance(parsed, ContentError) else parsed


def _differs(original: Item, translation: Item, keys: Iterable[str]) -> list[ContentError]:
    """Fixed fields the translation gives with another value than its original."""
    errors = []
    for key in keys:
        if key in translation.lines and getattr(translation, key) != getattr(original, key):
            errors.append(
                ContentError(
                    translation.path,
                    translation.line(key),
                    f"differs from the original {original.path.name}; "
                    "dates, places and references are the original's (leave the key out)",
                    field=key,
                )
            )
    return errors


def _staleness(found: TranslationFile, data: dict[str, Any], doc: Doc) -> list[ContentError]:
    """No recorded digest: a warning; a digest of another version of the original: an error."""
    recorded = data.get(TRANSLATED)
    current = digest(found.original)
    # A digest recorded before it covered the wording only still holds for the same file.
    if recorded is not None and str(recorded) == legacy_digest(found.original):
        return []
    if recorded is None:
        return [
            ContentError(
                found.path,
                1,
                f"no '{TRANSLATED}' recorded: cannot tell whether the translation is older "
                f"than its original (record it with `comms translation stamp`)",
                warning=True,
            )
        ]
    if str(recorded) != current:
        return [
            ContentError(
                found.path,
                doc.find((TRANSLATED,))[0],
                f"translation older than its original {found.original.name} "
                f"(recorded {recorded}, now {current}): update it, then record the new digest "
                "with `comms translation stamp FILE`",
                field=TRANSLATED,
            )
        ]
    return []


def _body_line(path: Path) -> int:
    """The line the body of a file starts at (1 when it cannot be told)."""
    try:
        text = path.read_text("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError):
        return 1
    parts = split(text, path)
    return 1 if isinstance(parts, ContentError) else parts[2]


def _copied(original: Item, translation: Item) -> tuple[list[ContentError], bool]:
    """Warnings for a translation that repeats its original's text word for word, and whether
    it is a copy as a whole (its text and every worded field): then it counts as untranslated,
    so the edition shows the original with its "not translated yet" marker."""
    path = translation.path
    wording = [
        key
        for key in front_matter_fields(type(translation))
        if key not in FIXED[translation.kind] and key not in ("published", "updated")
    ]
    same_fields = all(getattr(translation, k) == getattr(original, k) for k in wording)
    same_body = translation.body.strip() == original.body.strip()
    if same_body and same_fields:
        message = (
            f"the translation is a verbatim copy of its original {original.path.name}: "
            "translate it; until then the edition shows the original, marked as not translated"
        )
        return [ContentError(path, _body_line(path), message, warning=True)], True
    if same_body and original.body.strip():
        message = f"the text is a verbatim copy of the original {original.path.name}: translate it"
        return [ContentError(path, _body_line(path), message, warning=True)], False
    return [], False


def read_translation(
    found: TranslationFile, site: Site, languages: Iterable[str], home: str, context: dict[str, Any]
) -> tuple[Item | None, list[ContentError]]:
    """Read one translation against its original; the item (or None) and its problems."""
    path, language = found.path, found.language
    if language == home:
        message = f"'{language}' is the site's language: the original is {found.original.name}"
        return None, [ContentError(path, 1, message)]
    if language not in languages:
        known = ", ".join(sorted(languages))
        message = f"language '{language}' is not enabled in [languages] (enabled: {known}); ignored"
        return None, [ContentError(path, 1, message, warning=True)]
    original = site.by_kind(found.kind.name).get(found.slug)
    if original is None:
        where = f"{found.kind.folder}/{found.original.name}"
        if found.original.is_file():  # its own errors are reported; this one only follows
            message = f"the original {where} has errors; the translation is left out"
            return None, [ContentError(path, 1, message, warning=True)]
        return None, [ContentError(path, 1, f"the original {where} is missing")]
    base = _front_matter(original.path)
    if base is None:  # read well a moment ago: an editor is saving it right now
        message = (
            f"the original {found.kind.folder}/{found.original.name} changed while it was read; "
            "run the command again once it is saved"
        )
        return None, [ContentError(path, 1, message)]
    own = _front_matter(path)
    own_context = {**context, "language": language}
    item, problems = read_file(path, found.kind, own_context, (found.slug, base[0]))
    if own is not None:
        problems.extend(_staleness(found, *own))
    if item is None:
        return None, problems
    problems.extend(_differs(original, item, FIXED[found.kind.name]))
    if any(not problem.warning for problem in problems):
        return None, problems
    copied, whole = _copied(original, item)
    problems.extend(copied)
    return (None if whole else item), problems


def read_translations(
    content_dir: Path,
    site: Site,
    languages: Iterable[str],
    home: str,
    context: dict[str, Any],
    listed: list[Path] | None = None,
) -> list[ContentError]:
    """Read every translation (of `listed`, `reader.markdown_files`, if given) into
    `site.translations`; return their problems."""
    enabled = set(languages)
    problems: list[ContentError] = []
    for found in translation_files(content_dir, listed):
        item, errors = read_translation(found, site, enabled, home, context)
        problems.extend(errors)
        if item is not None:
            site.translations.setdefault(found.language, {})[item.uid] = item
    return problems


def edition_site(site: Site, language: str) -> Site:
    """The site as readers of the edition in `language` see it: each item in translation
    where there is one, else the original (the site's language)."""
    own = site.translations.get(language, {})
    if not own:
        return site

    def pick(items: dict[str, Any]) -> dict[str, Any]:
        return {slug: own.get(item.uid, item) for slug, item in items.items()}

    return replace(
        site,
        events=pick(site.events),
        awards=pick(site.awards),
        practices=pick(site.practices),
        issues=pick(site.issues),
    )


def untranslated(site: Site, language: str, home: str) -> frozenset[str]:
    """The `kind/slug` of every item an edition in `language` shows in the site's language."""
    if language == home:
        return frozenset()
    own = site.translations.get(language, {})
    return frozenset(item.uid for item in site.all_items() if item.uid not in own)


def has_page(item: Item, edition: Edition) -> bool:
    """Whether `item` has files of its own in `edition`: its page, an event's calendar file, an
    issue's public copy. The site's edition has every item's; another edition only those of
    items translated into its language (`item` as `edition_site` shows it): an original would
    only repeat the root's page, so the edition's lists, feeds and calendars link that one.
    The one rule (docs/editions.md, "Web and feeds")."""
    return edition.is_home or language_of(item, edition.home) == edition.language


def translated_languages(site: Site, item: Item) -> list[str]:
    """The languages `item` is translated into, sorted."""
    uid = item.uid
    return sorted(lang for lang, items in site.translations.items() if uid in items)


def with_digest(text: str, value: str) -> str:
    """A translation's text with `original_digest: <value>` recorded in its front matter
    (replacing the recorded one, else as the first key); the rest stays as written."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ValueError("no front matter: the file must start with a line '---'")
    entry = f"{TRANSLATED}: {value}\n"
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            break
        if line.startswith(f"{TRANSLATED}:"):
            lines[index] = entry
            return "".join(lines)
    return "".join([lines[0], entry, *lines[1:]])


def skeleton(original: Path, language: str) -> str:
    """A new translation of `original` into `language`: the digest, the fields a translator
    words (title, subject, summary …; not the fixed ones) and the body, to translate in place."""
    text = unicodedata.normalize("NFC", original.read_text("utf-8").removeprefix("\ufeff"))
    parts = split(text, original)
    if isinstance(parts, ContentError):
        raise ValueError(parts.message)
    front, body, _ = parts
    kind = FOLDERS[original.parent.name]
    keep = [key for key in _keys(front) if key not in FIXED[kind.name]]
    wording = _top_level_blocks(front, keep)
    note = f"# {language}: translate these values and the body; leave out what stays"
    return f"---\n{note}\n{TRANSLATED}: {digest(original)}\n{wording}---\n{body}"


def _keys(front: str) -> list[str]:
    return [
        line.split(":", 1)[0].strip()
        for line in front.splitlines()
        if line and not line[0].isspace() and not line.startswith("#") and ":" in line
    ]


def _top_level_blocks(front: str, keys: list[str]) -> str:
    """The lines of the given top-level keys (with their indented continuation lines)."""
    out: list[str] = []
    taking = False
    for line in front.splitlines(keepends=True):
        if line and not line[0].isspace() and not line.startswith("#"):
            taking = line.split(":", 1)[0].strip() in keys
        if taking:
            out.append(line)
    return "".join(out)


def is_translation(path: Path) -> bool:
    """True for a file named like a translation (`<slug>.<lang>.md`)."""
    return TRANSLATION_NAME.match(path.name) is not None


def language_of(item: Item, home: str) -> str:
    """The language an item is written in: its translation's, else the site's."""
    match = TRANSLATION_NAME.match(item.path.name)
    return match["language"] if match else home
