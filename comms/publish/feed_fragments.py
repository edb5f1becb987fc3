"""Feed entries as the bytes a feed file holds for them, made once per build for all of an
edition's feeds and kept across builds in var/, so a feed made again serializes only the
entries that changed.

An entry's fragment (its `<item>`, `<entry>` or JSON object, without what separates it from
the next) depends on nothing but the entry and the build's shared inputs, so it is kept
under the page cache's key of the two (`Fingerprints.key`: the entry's edition, item, stamp
and what it shows, Merkle style). Each feed file keeps the fragments of its entries in a file
of its own under `FRAGMENTS_DIR`, and those that file lacks in a second, small one beside it
(`.new`): a build after one edit writes the few new fragments, not a whole feed's again, until
the second holds more than `DELTA` of the feed (then the first is written anew and the second
removed). Both are checked by their SHA-256 and replaced whole (temp file + rename): two
processes that build at once each read a complete file or none, and a fragment is named by
its key, so whichever files they leave, every fragment in them is right; one that is missing
or damaged only means its entries are serialized again.
"""

from __future__ import annotations

import hashlib
import os
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
#: The share of a feed's entries (and at least `DELTA_MIN` entries) the second file may hold
#: or the first may hold in vain (entries no longer in the feed) before the first is rewritten.
DELTA = 0.125
DELTA_MIN = 16


class Fragments:
    """The serialized entries of one edition's feeds in one build, and those kept before."""

    def __init__(
        self, config: Config, edition: Edition, keys: Fingerprints, claimed: set[str] | None = None
    ) -> None:
        self.folder = config.root / FRAGMENTS_DIR
        self.edition = edition
        self.keys = keys
        #: key → fragment, made or read in this build (the feeds of an edition share most).
        self.made: dict[str, bytes] = {}
        #: The names of the files the build's feeds keep (`claim`), shared by its editions.
        self.claimed: set[str] = set() if claimed is None else claimed

    def _file(self, path: str, part: str = "") -> Path:
        name = hashlib.sha256(f"{self.edition.folder}{path}".encode()).hexdigest()[:32]
        return self.folder / f"{name}{part}.bin"

    def claim(self, path: str) -> None:
        """Note that the feed file at `path` keeps its fragments here, whether or not this
        build makes it (`sweep` leaves its files)."""
        self.claimed.update(self._file(path, part).name for part in ("", ".new"))

    def _kept(self, path: str, part: str = "") -> dict[str, bytes]:
        """The fragments the last builds of the feed file at `path` kept in its file `part`
        (none when they are missing, damaged or of another layout)."""
        kept = read_checked(self._file(path, part), LAYOUT)
        return kept if isinstance(kept, dict) else {}

    def _keep(
        self,
        path: str,
        fragments: dict[str, bytes],
        base: dict[str, bytes],
        delta: dict[str, bytes],
    ) -> None:
        """Keep `fragments`, the feed's now, beside `base` and `delta` as its files hold them."""
        fresh = {key: made for key, made in fragments.items() if key not in base}
        stale = sum(1 for key in base if key not in fragments)
        if not fresh and not stale:
            if delta:
                self._file(path, ".new").unlink(missing_ok=True)
            return
        if base and max(len(fresh), stale) <= max(DELTA_MIN, DELTA * len(fragments)):
            if fresh != delta:
                write_checked(self._file(path, ".new"), LAYOUT, fresh)
            return
        if write_checked(self._file(path), LAYOUT, fragments):
            self._file(path, ".new").unlink(missing_ok=True)

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
        prefix = self.keys.prefix("entry", fmt)
        named = [prefix.key_or_none(entry) for entry in entries]
        keys = [key for key in named if key is not None]
        if len(keys) < len(named):
            return None  # an entry the key cannot describe: made with the file, every time
        # Read only when its file is made.
        base = {} if path is None else self._kept(path)
        delta = {} if path is None else self._kept(path, ".new")
        kept = {**base, **delta} if delta else base
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
        if path is not None:
            self._keep(path, dict(zip(keys, found, strict=True)), base, delta)
        return found


def sweep(config: Config, claimed: set[str]) -> None:
    """Remove the fragments files no feed of the build claimed (`Fragments.claim`): those of
    feeds that are gone (a region, a kind or an edition dropped) would stay forever. Only
    files of a whole build's claims may be swept; a file removed that another build still
    uses only costs it a miss."""
    folder = config.root / FRAGMENTS_DIR
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.endswith(".bin") and not name.startswith(".") and name not in claimed:
            try:
                (folder / name).unlink(missing_ok=True)
            except OSError:
                return  # a folder this process may not change: they stay, as before
