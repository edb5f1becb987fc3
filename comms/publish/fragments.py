"""The entries of the archive's list pages (an item's teaser, a past event's line), each
rendered once per build and edition and kept in var/ under the digest of its inputs.

A list page shows hundreds of items, and one changed item used to render all of them again,
in every edition. Each entry is a piece of `teasers` called with its item: its key
is the SHA-256 of what the page shares with every other (the build's inputs: code, templates,
catalogs, settings), the edition, the macro and its arguments, the page's relative roots and
the item itself (`page_cache.Fingerprints`). A list page keeps the entries it showed in one
file of its own (`var/cache/fragments/`), so the next build renders only the entries whose
key is new: one changed item renders one entry per edition. The file starts with the SHA-256
of the rest and is replaced whole (temp file + rename): two processes that build at once each
read a whole file or none, and a damaged one is a miss, never served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from markupsafe import Markup

from comms.content.models import Item
from comms.core.errors import RenderError
from comms.core.files import read_checked, write_checked
from comms.publish.teasers import Teasers
from comms.publish.templating import pieces

#: Where the list pages keep their entries, under the configuration's folder.
CACHE_DIR = Path("var") / "cache" / "fragments"
#: Raised when what a file holds changes shape, so old files are never read.
LAYOUT = 1
#: The key of an entry from its macro, arguments and item (None: it cannot be named).
KeyOf = Callable[[str, tuple[Any, ...], Item], str | None]


def _read(file: Path) -> dict[str, str]:
    """The entries kept in `file` by key; nothing if it is missing, damaged or of another
    layout."""
    entries = read_checked(file, LAYOUT)
    if not isinstance(entries, dict):
        return {}
    return {str(key): str(html) for key, html in entries.items()}


class Kept:
    """The files of kept entries one build has read, each read once (a missing or damaged
    file holds nothing)."""

    def __init__(self) -> None:
        self._files: dict[Path, dict[str, str]] = {}
        self._unions: dict[tuple[Path, ...], dict[str, str]] = {}

    def __call__(self, file: Path) -> dict[str, str]:
        """The entries kept in `file` by key."""
        found = self._files.get(file)
        if found is None:
            found = self._files[file] = _read(file)
        return found

    def union(self, files: tuple[Path, ...]) -> dict[str, str]:
        """The entries kept in any of `files` (the pages of one list), gathered once."""
        found = self._unions.get(files)
        if found is None:
            found = self._unions[files] = {}
            for file in files:
                found.update(self(file))
        return found


class Entries:
    """The entries of one list page as it is made: found among those its last build kept (or
    those the other pages of its list kept: an item moves to the next page when one is added
    before it), else rendered; `save` keeps the ones it showed when it rendered any."""

    def __init__(
        self,
        language: str,
        page: dict[str, Any],
        key: KeyOf,
        file: Path | None = None,
        siblings: tuple[Path, ...] = (),
        kept: Kept | None = None,
    ) -> None:
        #: The language of the edition (its environment and catalog).
        self.language = language
        #: The page's template context: the teasers see what the page sees (roots, edition …).
        self.page = page
        self.key = key
        #: Where the page keeps its entries (None: nothing is kept, every entry is rendered).
        self.file = file
        #: The files of the pages of its list (its own among them or not: it is asked first;
        #: with it, every page of a list asks for the same files, gathered once per build).
        self.siblings = siblings
        self.kept = kept or Kept()
        self.shown: dict[str, str] = {}
        #: How many entries this page rendered (the rest came from kept ones).
        self.rendered = 0
        self._pieces: Teasers | None = None
        #: The entries the pages of its list kept (gathered at the first miss: a list's key
        #: of hundreds of files is hashed once per page, not once per entry).
        self._others: dict[str, str] | None = None

    def __call__(self, macro: str, item: Item, *args: Any) -> Markup:
        """The HTML of `item` rendered by `macro` (with `args`): the template's `entry`."""
        key = self.key(macro, args, item) if self.file is not None else None
        if key is not None:
            html = self._find(key)
            if html is not None:
                self.shown[key] = html
                return Markup(html)
        made = self._render(macro, item, args)
        if key is not None:
            self.shown[key] = str(made)
        return made

    def _find(self, key: str) -> str | None:
        """The entry kept under `key` by this page, or else by another page of its list."""
        assert self.file is not None
        html = self.shown.get(key)
        if html is None:
            html = self.kept(self.file).get(key)
        if html is None and self.siblings:
            if self._others is None:
                self._others = self.kept.union(self.siblings)
            html = self._others.get(key)
        return html

    def _render(self, macro: str, item: Item, args: tuple[Any, ...]) -> Markup:
        self.rendered += 1
        try:
            if self._pieces is None:
                self._pieces = pieces(self.language)
            return Markup(getattr(self._pieces, macro)(self.page, item, *args))
        except TemplateError as exc:  # worded as `render_template` words a page's
            raise RenderError(f"templates/web: {type(exc).__name__}: {exc}") from None

    def save(self) -> None:
        """Keep the entries the page showed, if it rendered any (a page whose entries were all
        kept leaves its file alone); a file that cannot be written is only a later miss."""
        if self.file is None or self.rendered == 0:
            return
        write_checked(self.file, LAYOUT, self.shown)


@lru_cache(maxsize=8192)
def store_file(root: Path, page: str) -> Path:
    """The file that keeps the entries of the list page at output path `page` (kept: every
    page of a list names the files of all the others)."""
    name = hashlib.sha256(page.encode()).hexdigest()[:32]
    return root / CACHE_DIR / f"{name}.bin"
