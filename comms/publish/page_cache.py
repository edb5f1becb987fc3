"""Rendered pages kept in var/ under the digest of their inputs, so a build renders and writes
only the files whose inputs changed.

A file's key is the SHA-256 of what every file of the build shares (`build_digest`: comms's
code, templates and catalogs, the versions of the libraries that write pages, feeds and
calendars, the settings and the static files) and of what this file is made from
(`fingerprint` of the item(s) it shows, its template, its context), computed by its producer
(`comms.publish.producer.Keyed`). Time enters a file only through what its producer chose
to show (the upcoming events, the feed stamps), so it is in the key too.

Per output folder the cache keeps an index, path → (key, SHA-256 of the bytes, the file's
inode, size and mtime; checked by its own SHA-256), and the bytes themselves: a hard link
to the file it wrote (no copy; comms only ever replaces output files, never writes into
one), or a copy where the output folder is on another file system. A file whose key and
stat match its index entry is neither made nor read: a build where nothing changed touches
no page. Bytes kept under a key are served only if their SHA-256 is the one recorded, so a
damaged entry is made again. The builds of one output folder take turns under
`build_record.building`, and the index is replaced whole (temp file + rename): two
processes that build at once each find a complete index and complete files.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import date, time, timedelta, tzinfo
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any, NamedTuple

from pydantic import BaseModel

from comms.content.models import Site
from comms.core.config import Config, Settings
from comms.core.files import private_dir, read_checked, write_checked
from comms.core.settings import settings_text
from comms.publish import build_record, templating
from comms.publish.producer import Body, Build, Files, Keyed, per_build

#: Where the caches live (one folder per output folder), under the configuration's folder.
CACHE_DIR = Path("var") / "cache" / "pages"
#: Raised when what the index holds changes shape, so old indexes are never read.
LAYOUT = 1
#: The index of one output folder's cache (`_read_index`).
INDEX = "index.bin"
#: The libraries whose versions decide the bytes of a page, feed or calendar.
WRITERS = ("jinja2", "babel", "markupsafe", "mjml-python", "feedgen", "lxml", "icalendar")

#: Objects a template context holds that are made from the configuration alone (formatter,
#: URLs, helpers bound to it): `build_digest` covers them, so their class name stands for them
#: (Formatter and Urls by name: their modules import this one).
_FROM_CONFIG = ("Formatter", "Urls")
#: The configuration itself, as a calendar's head takes it: `build_digest` covers what a file
#: may show of it. Described whole, it put into every such key what no file shows (the
#: database, the transport, the secret key), and a send over another transport or on another
#: database made those files again.
_CONFIG_TYPES = (Config, Settings)


#: Scalars fed as their type's name and repr (a subclass takes the general path, alike).
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


class Merkle:
    """A value described by a few parts it is made from (an item rather than every field
    worded from it): its fingerprint is made from theirs, once per build, Merkle style."""

    def parts(self) -> tuple[Any, ...]:
        """The values that decide everything this one holds or makes."""
        raise NotImplementedError


class Uncacheable(TypeError):
    """A context value the fingerprint cannot describe: the file is made every time."""


@functools.lru_cache(maxsize=1)
def _writer_versions() -> str:
    found = []
    for name in WRITERS:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return "\0".join(found)


def build_digest(config: Config) -> str:
    """What every file of a build of `config` is made from, beside its own inputs."""
    digest = hashlib.sha256(f"layout {LAYOUT}\0".encode())
    digest.update(build_record.code_digest())
    # The templates and catalogs where they are read from (the package's, which the code
    # digest covers too, unless they were pointed elsewhere).
    build_record.files_digest(digest, templating.TEMPLATES)
    digest.update(_writer_versions().encode())
    # Not the settings that change no byte: a send on a fresh database or over another
    # transport would make every page again.
    digest.update(settings_text(config.settings, skip=build_record.NO_OUTPUT_SETTINGS).encode())
    for value in (config.root, config.content_dir, config.output_dir, config.tz):
        digest.update(f"{value}\0".encode())
    digest.update(repr(sorted(config.languages)).encode())
    build_record.files_digest(digest, config.root / config.settings.render.static_dir)
    return digest.hexdigest()


class Fingerprints:
    """Digests of template context values; a content item's is made once per build."""

    def __init__(self, config: Config, site: Site | None = None) -> None:
        self.config = config
        #: Where an item's digest is kept once made (`Site.digest`), if the build's site is known.
        self.site = site
        self._memo: dict[int, tuple[Any, bytes]] = {}

    def key(self, *values: Any) -> str:
        """The cache key of a file made from `values` (beside the build's shared inputs);
        Uncacheable if one of them cannot be described."""
        digest = self._base.copy()
        for value in values:
            self._feed(digest, value)
        return digest.hexdigest()

    def prefix(self, *values: Any) -> Prefix:
        """What many keys begin with, described once: `prefix(*a).key(*b)` is `key(*a, *b)`
        (the digest is a stream), for the files of a producer that share their first values."""
        digest = self._base.copy()
        for value in values:
            self._feed(digest, value)
        return Prefix(self, digest)

    @functools.cached_property
    def base(self) -> str:
        """What every file of the build is made from (`build_digest`), read when first asked."""
        return build_digest(self.config)

    @functools.cached_property
    def _base(self) -> hashlib._Hash:
        return hashlib.sha256(self.base.encode())

    def key_or_none(self, *values: Any) -> str | None:
        """`key` of `values`, or None if one of them cannot be described."""
        try:
            return self.key(*values)
        except Uncacheable:
            return None

    def _whole(self, value: Any) -> bytes:
        """The digest of a content item, a `Merkle` value or a frozen dataclass, made once per
        build (none changes while the build runs; the object is kept, so its id is not
        reused)."""
        known = self._memo.get(id(value))
        if known is None or known[0] is not value:
            kind = type(value)
            shape = _WHOLE.get(kind) or _whole_shape(kind)
            digest = shape[1].copy()
            if shape[0] == "model":
                try:
                    # A frozen model (an item) is digested once per site, for every key.
                    digest.update(
                        self.site.digest(value)
                        if self.site is not None and value.model_config.get("frozen")
                        else b"J" + hashlib.sha256(_dump(value)).digest()
                    )
                except ValueError as exc:  # lone surrogates: JSON cannot carry them
                    raise Uncacheable(f"cannot fingerprint {value!r}") from exc
            elif shape[0] == "merkle":
                for part in value.parts():
                    self._feed(digest, part)
            else:
                for name in shape[2]:
                    self._feed(digest, getattr(value, name))
            known = self._memo[id(value)] = (value, digest.digest())
        return known[1]

    def _feed(self, digest: Any, value: Any) -> None:
        # The commonest values first, by exact type: a build feeds ~90,000 of them.
        kind = type(value)
        if kind in _PLAIN:
            digest.update(f"{kind.__name__}:{value!r}\0".encode())
            return
        known = self._memo.get(id(value))
        if known is not None and known[0] is value:  # a value `_whole` described already
            digest.update(b"W" + known[1])
            return
        how = _HOW.get(kind) or _how(kind)
        if how is _How.SCALAR:
            digest.update(f"{kind.__name__}:{value!r}\0".encode())
        elif how is _How.WHOLE:
            digest.update(b"W" + self._whole(value))
        elif how is _How.SEQUENCE:
            digest.update(f"[{len(value)}".encode())
            memo = self._memo
            for element in value:
                # Most are items or entries described already (as at the top of `_feed`).
                known = memo.get(id(element))
                if known is not None and known[0] is element:
                    digest.update(b"W" + known[1])
                else:
                    self._feed(digest, element)
            digest.update(b"]")
        elif how is _How.MAPPING:
            digest.update(f"{{{len(value)}".encode())
            for name, element in value.items():  # in order: templates iterate in it
                self._feed(digest, name)
                self._feed(digest, element)
            digest.update(b"}")
        elif how is _How.SET:
            digest.update(f"<{sorted(map(repr, value))}>".encode())
        elif how is _How.DATACLASS:
            digest.update(f"D{kind.__qualname__}".encode())
            for field in dataclasses.fields(value):
                self._feed(digest, getattr(value, field.name))
        elif how is _How.CONFIG:
            # A helper bound to the configuration (a function, a partial over `config`), or
            # an object made from it: `build_digest` covers what it does.
            digest.update(f"F{getattr(value, '__qualname__', kind.__qualname__)}".encode())
        else:
            raise Uncacheable(f"cannot fingerprint {kind.__qualname__}")


class Prefix:
    """The first values of many keys, described (`Fingerprints.prefix`)."""

    def __init__(self, prints: Fingerprints, digest: hashlib._Hash) -> None:
        self._prints = prints
        self._digest = digest

    def key(self, *values: Any) -> str:
        """The key of the prefix's values followed by `values`; Uncacheable as `key`."""
        digest = self._digest.copy()
        for value in values:
            self._prints._feed(digest, value)
        return digest.hexdigest()

    def key_or_none(self, *values: Any) -> str | None:
        """`key` of `values`, or None if one of them cannot be described."""
        try:
            return self.key(*values)
        except Uncacheable:
            return None


#: How `Fingerprints._whole` describes a type: ("model" | "merkle" | "fields", the digest
#: of its name to start from, its fields' names), decided once per type (`_whole_shape`):
#: the checks and `dataclasses.fields` cost more than describing a small value.
_WHOLE: dict[type, tuple[str, hashlib._Hash, tuple[str, ...]]] = {}


def _whole_shape(kind: type) -> tuple[str, hashlib._Hash, tuple[str, ...]]:
    start = hashlib.sha256(kind.__qualname__.encode())
    names: tuple[str, ...] = ()
    if issubclass(kind, BaseModel):
        how = "model"
    elif issubclass(kind, Merkle):
        how = "merkle"
    else:  # a frozen dataclass
        how = "fields"
        names = tuple(field.name for field in dataclasses.fields(kind))  # type: ignore[arg-type]
    _WHOLE[kind] = (how, start, names)
    return _WHOLE[kind]


class _How(enum.Enum):
    """How `Fingerprints._feed` describes a value, decided by its type alone (`_how`)."""

    SCALAR = enum.auto()
    WHOLE = enum.auto()
    SEQUENCE = enum.auto()
    MAPPING = enum.auto()
    SET = enum.auto()
    DATACLASS = enum.auto()
    CONFIG = enum.auto()
    UNKNOWN = enum.auto()


#: `_how` of every type met so far: the checks below cost more than the rest of a value's
#: description, and a build meets a few dozen types ~90,000 times.
_HOW: dict[type, _How] = {}


def _how(kind: type) -> _How:
    """How values of type `kind` are described, in the order the checks must run (a `str`
    enum is a scalar, a frozen dataclass whole, a class object a helper)."""
    if kind is type(None) or issubclass(kind, bool | int | float | str | bytes):
        how = _How.SCALAR
    elif kind in _CONFIG_TYPES:  # before WHOLE: both are frozen
        how = _How.CONFIG
    elif issubclass(kind, BaseModel | Merkle) or _frozen_type(kind):
        how = _How.WHOLE
    elif issubclass(kind, list | tuple):
        how = _How.SEQUENCE
    elif issubclass(kind, Mapping):
        how = _How.MAPPING
    elif issubclass(kind, set | frozenset):
        how = _How.SET
    elif issubclass(kind, date | time | timedelta | tzinfo | PurePath | enum.Enum):
        how = _How.SCALAR
    elif dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        how = _How.DATACLASS
    elif any("__call__" in vars(base) for base in kind.__mro__) or kind.__name__ in _FROM_CONFIG:
        how = _How.CONFIG
    else:
        how = _How.UNKNOWN
    _HOW[kind] = how
    return how


def _dump(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def _frozen_type(kind: type) -> bool:
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


def keyed(prints: Fingerprints, make: Callable[[], bytes], *values: Any) -> Body:
    """A `Keyed` body for `make` under the key of `values` (named when it is first asked for;
    no key if one of them cannot be described)."""
    return Keyed(functools.partial(prints.key_or_none, *values), make)


def by_path(prints: Fingerprints | None, files: Files, label: str) -> Files:
    """`files` keyed by their path alone: for files made from what `build_digest` covers
    (the configuration, the templates, the static files), such as copies of static files."""
    if prints is None:
        return files
    keyed_files = Files()
    for path in files:
        body = files.body(path)
        if callable(body) and not isinstance(body, Keyed):
            body = keyed(prints, body, label, path)
        keyed_files[path] = body
    return keyed_files


@per_build
def prints(build: Build) -> Fingerprints:
    """The fingerprints of `build`, made once for all its producers (and its items' digests)."""
    return Fingerprints(build.config, build.site)


class Entry(NamedTuple):
    """What the index knows of one output file: its row in the index file, as it is there
    (a tuple: an index holds thousands, made and compared in every build)."""

    key: str
    sha: str
    ino: int
    size: int
    mtime: int

    @property
    def stamp(self) -> tuple[int, int, int]:
        """Inode, size and mtime (`_stamp`)."""
        return (self.ino, self.size, self.mtime)


def _read_index(file: Path) -> dict[str, Entry]:
    """The index in `file`: {path: (key, sha, inode, size, mtime)} in `marshal` (a fifth of
    the time JSON took for 16,000 files), checked (`read_checked`: only what `save` wrote
    under this `LAYOUT`); empty if missing or damaged."""
    rows = read_checked(file, LAYOUT)
    if not isinstance(rows, dict):
        return {}
    make = Entry._make
    return {path: make(row) for path, row in rows.items()}


def _stamp(path: str | Path) -> tuple[int, int, int] | None:
    """Inode, size and mtime of `path` (None if it is not a regular file)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PageCache:
    """The index and kept bytes of one output folder; every failure to use them is a miss."""

    def __init__(self, config: Config, out_dir: Path) -> None:
        name = hashlib.sha256(os.path.realpath(out_dir).encode()).hexdigest()[:32]
        self.folder = config.root / CACHE_DIR / name
        self.out_dir = out_dir
        self.index: dict[str, Entry] = {}
        self._by_key: dict[str, str] = {}
        try:
            self.index = _read_index(self.folder / INDEX)
        except (OSError, ValueError, TypeError, EOFError):
            self.index = {}  # no index, or a damaged one: every file is made again
        self._by_key = {entry[0]: entry[1] for entry in self.index.values()}
        self._new: dict[str, Entry] = {}
        self._made = False

    def fresh(self, path: str, key: str) -> bool:
        """True if the file at `path` is the one made under `key` and nobody changed it since."""
        entry = self.index.get(path)
        if entry is None or entry[0] != key:
            return False
        return _stamp(f"{self.out_dir}/{path}") == entry[2:]  # a str: 16,000 of them

    def kept(self, key: str) -> bytes | None:
        """The bytes made under `key` before, if they are kept and intact."""
        sha = self._by_key.get(key)
        if sha is None:
            return None
        store = self.folder / "files" / key
        try:
            data = store.read_bytes()
        except OSError:
            data = None
        if data is not None and _sha(data) == sha:
            return data
        # Missing or damaged: forget it, so the bytes made now are kept in its place.
        del self._by_key[key]
        store.unlink(missing_ok=True)
        return None

    def keep(self, path: str, key: str | None, data: bytes) -> None:
        """Note that the output file at `path` now holds `data`, what `key` makes (None: no
        key, so nothing is kept)."""
        target = self.out_dir / path
        stamp = _stamp(target)
        if key is None or stamp is None:
            return
        entry = Entry(key, _sha(data), *stamp)
        store = self.folder / "files" / key
        if self._by_key.get(key) != entry.sha or not store.is_file():
            self._store(target, store, data)
        self._by_key[key] = entry.sha
        # A new link changes no stamp we record (inode, size and mtime stay).
        self._new[path] = entry

    def keep_fresh(self, path: str) -> None:
        """Note that the file at `path` is still the one its index entry names (`fresh`)."""
        self._new[path] = self.index[path]

    def _store(self, target: Path, store: Path, data: bytes) -> None:
        """Keep `data` (the bytes of `target`) as `store`: a hard link, else a copy."""
        try:
            if not self._made:
                private_dir(store.parent)
                self._made = True
            try:
                os.link(target, store)  # a new key: one call
                return
            except OSError:
                pass  # there already (replaced below, atomically), or another file system
            tmp = f"{store.parent}/.{store.name}.{os.getpid()}.tmp"
            try:
                os.link(target, tmp)
            except FileExistsError:
                os.unlink(tmp)  # left by a process with our id that was killed
                os.link(target, tmp)
            except OSError:
                Path(tmp).write_bytes(data)  # another file system: a copy
            os.replace(tmp, store)
        except OSError:
            pass  # only a later miss

    def stamps(self) -> dict[str, tuple[int, int]]:
        """(size, mtime) of every file this build wrote or found fresh, as it left them."""
        return {path: (entry[3], entry[4]) for path, entry in self._new.items()}

    def save(self) -> None:
        """Replace the index with the files of this build and drop kept bytes no file uses."""
        if self._new == self.index:
            return
        rows = {path: tuple(entry) for path, entry in self._new.items()}  # plain: marshal
        if not write_checked(self.folder / INDEX, LAYOUT, rows):
            return
        used = {entry.key for entry in self._new.values()}
        try:
            names = os.listdir(self.folder / "files")
        except OSError:
            return
        for name in names:
            if name not in used and not name.startswith("."):
                (self.folder / "files" / name).unlink(missing_ok=True)
