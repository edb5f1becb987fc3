"""Translations on the desk: an item's original beside its translation into an edition's
language, the translation saved as the file `comms translation new` and `stamp` write
(`comms.content.translation_files` decides its name, skeleton and digest), never over another's
change, committed with the account as author; each save in the audit log."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from comms.content.authors import changes_since
from comms.content.front_matter import split
from comms.content.models import KINDS
from comms.content.reader import TRANSLATED
from comms.content.site import read_site
from comms.content.source_files import Conflict, read_source
from comms.content.translation_files import digest, legacy_digest, skeleton, with_digest
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError
from comms.core.languages import site_editions
from comms.db.desk_accounts import Account, DeskAccounts
from comms.publish.listing import Listed
from comms.publish.problem_words import problem_line
from comms.sending.desk_office import commit_as, save_as

#: What a page records of the original it showed: the digest a translation records.
DIGEST = re.compile(r"^[0-9a-f]{16}$")
#: The most of an original's changes a page shows (characters).
MAX_CHANGES = 20_000
#: A translation that is current, older than its original, without a recorded digest, missing.
CURRENT, STALE, UNSTAMPED, MISSING = "current", "stale", "unstamped", "missing"


@dataclass(frozen=True)
class Sides:
    """An item's original and its translation into one language, as the desk shows them."""

    kind: str
    slug: str
    language: str
    #: Relative to the config file's folder.
    original_path: str
    translation_path: str
    #: The original's fields a translator words (not the fixed ones) and its body.
    original_fields: str
    original_body: str
    #: The digest of the original's wording now.
    original_digest: str
    #: The translation's front matter (without `original_digest:`) and body; a skeleton from
    #: the original when there is no translation yet.
    fields: str
    body: str
    #: The digest of the translation file's bytes ("" while there is none).
    version: str
    #: The digest of the original the translation records, if any.
    recorded: str | None
    #: CURRENT, STALE, UNSTAMPED or MISSING.
    state: str
    #: `comms check`'s problems of the translation file (`PATH:LINE: message`).
    problems: list[str]
    #: When the translation is older than its original: how the original changed since the
    #: translation was last committed (a unified diff's hunks), where git can tell.
    changes: str | None = None


def _without_digest(front: str) -> str:
    return "".join(
        line for line in front.splitlines(keepends=True) if not line.startswith(f"{TRANSLATED}:")
    )


def _recorded(front: str) -> str | None:
    for line in front.splitlines():
        if line.startswith(f"{TRANSLATED}:"):
            return line.partition(":")[2].strip().strip("'\"") or None
    return None


def _state(original: Path, recorded: str | None, exists: bool) -> str:
    if not exists:
        return MISSING
    if recorded is None:
        return UNSTAMPED
    return CURRENT if recorded in (digest(original), legacy_digest(original)) else STALE


def _parts(text: str, path: Path) -> tuple[str, str]:
    """Front matter and body of a file; a file without front matter is all body."""
    parts = split(text, path)
    return ("", text) if isinstance(parts, ContentError) else (parts[0], parts[1])


class Translations:
    """The desk's translation services over one configuration and its audit log."""

    def __init__(self, config: Config, accounts: DeskAccounts) -> None:
        self.config = config
        self.accounts = accounts

    @property
    def languages(self) -> list[str]:
        """The languages of the editions besides the site's own."""
        return [edition.language for edition in site_editions(self.config).translated]

    def _paths(self, items: list[Listed], kind: str, slug: str, language: str) -> tuple[Path, Path]:
        """The original and translation files of an item `comms list` lists (nothing else can
        be named) in an edition's language; CommsError otherwise."""
        if language not in self.languages:
            raise CommsError(f"'{language}' is not the language of an edition")
        found = next((i for i in items if i.kind == kind and i.slug == slug), None)
        if found is None or kind not in KINDS:
            raise CommsError(f"no {kind} '{slug}'")
        original = self.config.root / found.path
        return original, original.with_name(f"{slug}.{language}.md")

    def states(self, items: list[Listed]) -> list[tuple[Listed, list[tuple[str, str]]]]:
        """Per item, per edition language, the state of its translation."""
        rows = []
        for item in items:
            original = self.config.root / item.path
            if not original.is_file() or item.status == "invalid":
                continue
            states = []
            for language in self.languages:
                path = original.with_name(f"{item.slug}.{language}.md")
                exists = path.is_file()
                front = _parts(path.read_text("utf-8"), path)[0] if exists else ""
                states.append((language, _state(original, _recorded(front), exists)))
            rows.append((item, states))
        return rows

    def sides(self, items: list[Listed], kind: str, slug: str, language: str) -> Sides:
        """The original of an item and its translation into `language` side by side."""
        original, path = self._paths(items, kind, slug, language)
        try:
            draft = skeleton(original, language)
        except ValueError as exc:
            raise CommsError(f"{original.name}: {exc}") from None
        draft_front, draft_body = _parts(draft, original)
        # The skeleton's first line is the note to the translator; the digest is the page's.
        original_fields = _without_digest("".join(draft_front.splitlines(keepends=True)[1:]))
        exists = path.is_file()
        if exists:
            source = read_source(path)
            front, body = _parts(source.text, path)
            version = source.digest
        else:
            front, body, version = draft_front, draft_body, ""
        recorded = _recorded(front) if exists else None
        root = self.config.root
        state = _state(original, recorded, exists)
        return Sides(
            kind,
            slug,
            language,
            original.relative_to(root).as_posix(),
            path.relative_to(root).as_posix(),
            original_fields,
            draft_body,
            digest(original),
            _without_digest(front),
            body,
            version,
            recorded,
            state,
            self._problems(path) if exists else [],
            self._changes(original, path) if state == STALE else None,
        )

    def _changes(self, original: Path, path: Path) -> str | None:
        changes = changes_since(self.config.content_dir, path, original)
        if changes is not None and len(changes) > MAX_CHANGES:
            return changes[:MAX_CHANGES] + "\n…\n"
        return changes

    def _problems(self, path: Path) -> list[str]:
        _site, problems = read_site(self.config)
        language = self.config.settings.site.language
        return [problem_line(p, self.config.root, language) for p in problems if p.path == path]

    def save(
        self,
        items: list[Listed],
        kind: str,
        slug: str,
        language: str,
        form: tuple[str, str],
        seen: tuple[str, str, bool],
        account: Account,
    ) -> str:
        """Write the translation of an item into `language` from its front matter and body
        (`form`) as `account`: `seen` is the file's digest when the page was loaded ("" for
        none: it must still be missing; else Conflict), the original's digest the page
        showed, and whether the translation follows that original (then that digest is
        recorded, else the one recorded before stays). Commits where the content folder is a
        git repository; the new file digest."""
        original, path = self._paths(items, kind, slug, language)
        fields, body = (part.replace("\r\n", "\n") for part in form)
        version, shown, follows = seen
        if any(line.strip() == "---" for line in fields.splitlines()):
            raise CommsError("the fields must not contain a line '---' (it ends the fields)")
        if fields and not fields.endswith("\n"):
            fields += "\n"
        text = f"---\n{fields}---\n{body}"
        recorded = None
        if follows:
            if not DIGEST.match(shown):
                raise CommsError("the page did not say which original it showed; reload it")
            recorded = shown
        elif path.is_file():
            recorded = _recorded(_parts(path.read_text("utf-8"), path)[0])
        if recorded is not None:
            text = with_digest(text, recorded)
        folder = self.config.content_dir
        message = (
            f"{'Edit' if version else 'Add'} translation {path.relative_to(folder)} on the desk"
        )
        if version:
            new, commit = save_as(account, folder, path, text, version, message)
        else:
            data = text.encode("utf-8")
            try:
                with path.open("xb") as handle:
                    handle.write(data)
            except FileExistsError:
                raise Conflict(
                    f"{path.name} was created by someone else since you opened the page; "
                    "your text was not saved"
                ) from None
            new = hashlib.sha256(data).hexdigest()
            # A new file: its name was free, and git commits one at a time.
            commit = commit_as(account, folder, path, message)
        detail = f"commit {commit}" if commit else "no git repository"
        subject = f"{kind}/{slug}.{language}"
        self.accounts.audit(account.name, "save-translation", subject, new, detail)
        return new
