"""Feed entries as the bytes a feed file holds for them, made once per build for all of an
edition's feeds and kept across builds in var/, so a feed made again serializes only the
entries that changed.

An entry's fragment (its `<item>`, `<entry>` or JSON object, without what separates it from
the next) depends on nothing but the entry and the build's shared inputs, so it is kept
under the page cache's key of the two (`Fingerprints.key`: the entry's edition, item, stamp
and what it shows, Merkle style). Each feed file keeps the fragments of its entries in a file
of its own under `FRAGMENTS_DIR`, checked by its SHA-256 and replaced whole (temp file +
rename): two processes that build at once each read a complete file or none, and a file that
is missing or damaged only means its entries are serialized again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from comms.core.config import Config
from comms.core.files import read_checked, write_checked
from comms.core.languages import Edition
from comms.publish.feed_entry import Entry
from comms.publish.page_cache import Fingerprints

#: Where the fragments live (one file per feed file), under the configuration's folder.
FRAGMENTS_DIR = Path("var") / "cache" / "feeds"
#: Raised when what a fragments file holds changes shape, so old files are never read.
LAYOUT = 1


class Fragments:
    """The serialized entries of one edition's feeds in one build, and those kept before."""

    def __init__(self, config: Config, edition: Edition, keys: Fingerprints) -> None:
        self.folder = config.root / FRAGMENTS_DIR
        self.edition = edition
        self.keys = keys
        #: key → fragment, made or read in this build (the feeds of an edition share most).
        self.made: dict[str, bytes] = {}

    def _file(self, path: str) -> Path:
        name = hashlib.sha256(f"{self.edition.folder}{path}".encode()).hexdigest()[:32]
        return self.folder / f"{name}.bin"

    def _kept(self, path: str) -> dict[str, bytes]:
        """The fragments the last build of the feed file at `path` kept (none when they are
        missing, damaged or of another layout)."""
        kept = read_checked(self._file(path), LAYOUT)
        return kept if isinstance(kept, dict) else {}

    def _keep(self, path: str, fragments: dict[str, bytes]) -> None:
        write_checked(self._file(path), LAYOUT, fragments)

    def fragments(
        self,
        path: str | None,
        fmt: str,
        entries: list[Entry],
        make: Callable[[list[Entry]], list[bytes] | None],
    ) -> list[bytes] | None:
        """The fragments of `entries` in `fmt` for the feed file at `path`: made by `make`
        only for those neither this build nor the file's last build made (None when an
        entry has no key or `make` cannot split them: the caller makes the file whole).
        Without a `path` nothing is kept across builds (a file of one entry: when it is
        made again, its entry has changed)."""
        named = [self.keys.key_or_none("entry", fmt, entry) for entry in entries]
        keys = [key for key in named if key is not None]
        if len(keys) < len(named):
            return None  # an entry the key cannot describe: made with the file, every time
        kept = {} if path is None else self._kept(path)  # read only when its file is made
        for key in keys:
            if key not in self.made and key in kept:
                self.made[key] = kept[key]
        missing: dict[str, Entry] = {}
        for key, entry in zip(keys, entries, strict=True):
            if key not in self.made:
                missing.setdefault(key, entry)
        if missing:
            made = make(list(missing.values()))
            if made is None:
                return None
            self.made.update(zip(missing, made, strict=True))
        found = [self.made[key] for key in keys]
        if path is not None and set(kept) != set(keys):
            self._keep(path, dict(zip(keys, found, strict=True)))
        return found
