"""What the last build of an output folder was made from, so a build that would write the
same bytes again is skipped.

A build's bytes are a function of its inputs: the site as read (every item and translation,
the sent issues), the configuration, the feed history, comms's own code, templates and
catalogs, the static files, and the time. The first five are one SHA-256 (`inputs`); time
enters only through comparisons of `now` with instants the content names (an event's start
and end, an issue's date, a feed record's stamps), each shifted by the windows the settings
give in days, and through the year and day of `now`. So the output cannot change before the
next such instant (`until`). A build with the recorded inputs, before `until`, whose output
folder's files still have the sizes and mtimes the recorded build left, writes nothing and is
skipped. Builds of one folder take turns under a file lock, so a record always describes the
folder's last build; its feed history is the one the build made its files from
(comms.publish.state.OneBuild), so a write by another host or folder meanwhile differs from
it.

Computing `inputs` means reading the whole site. So the record also keeps the stamps (path, size,
mtime, inode) of every file the build reads (content, static files, comms's own code, templates
and catalogs), the configuration as loaded and the publishing state, taken before the build read
them (`take_stamps`): while they and the folder hold, before `until`, the build is skipped
without reading or importing anything else (`skipped`). A file changed within `SETTLE` of the
stamps (a change in the same clock tick could keep size and mtime) records no stamps: that
build decides by `inputs` instead. A database server's state is stamped by one query
(comms.core.server_state), which the build's own connection must answer alike.
"""

from __future__ import annotations

import bisect
import fcntl
import functools
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

import comms
from comms.core.database_url import sqlite_file
from comms.core.files import (
    SETTLE,
    file_clock,
    path_order,
    private_dir,
    read_checked,
    write_checked,
    write_private,
)
from comms.core.server_state import server_stamp
from comms.core.settings import settings_text
from comms.publish.item_memo import ItemMemo
from comms.publish.state import STATE_FILE, PublishState, file_state_stamp

# Types only: a skipped build (`skipped`) runs before the content models are imported.
if TYPE_CHECKING:
    from comms.content.models import Site
    from comms.core.config import Config

#: Where the records live (one per output folder), under the configuration's folder.
RECORD_DIR = Path("var") / "cache" / "build"
#: The longest a record is trusted, whatever the content says.
LONGEST = timedelta(days=1)
#: Settings that change no byte of a build, so no build is made again for them (the record's
#: `inputs`, the page cache's keys): how many processes make the files, which database the
#: publishing state comes from (what a file shows of it is an input of its own), and where
#: mail goes (`comms send --transport` publishes the archive before its first message).
NO_OUTPUT_SETTINGS = frozenset({"render.workers", "database_url", "transport"})


#: Where `code_digest` is kept with the package's settled stamps (`take_stamps`).
CODE_FILE = RECORD_DIR / "code.bin"
#: The file and the package's stamps when `take_stamps` found them settled, else None.
_settled_code: tuple[Path, str] | None = None


@functools.lru_cache(maxsize=1)
def code_digest() -> bytes:
    """The digest of comms's package: its code, templates and catalogs (once per process).

    Kept in var/ under the package's stamps when this process's `take_stamps` found them
    settled: the same stamps a skipped build trusts, and reading the 280 files cost a build
    more than stamping them."""
    settled = _settled_code
    if settled is not None:
        kept = read_checked(settled[0], 1)
        if isinstance(kept, list) and len(kept) == 2 and kept[0] == settled[1]:
            return bytes(kept[1])
    digest = hashlib.sha256(comms.__version__.encode())
    package = Path(comms.__file__).parent
    for path in sorted(package.rglob("*"), key=path_order):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    if settled is not None:
        write_checked(settled[0], 1, [settled[1], digest.digest()])
    return digest.digest()


def files_digest(digest: Any, folder: Path) -> None:
    """Add every file under `folder` (name and bytes) to `digest`."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=path_order):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")


def inputs(config: Config, site: Site, state: PublishState) -> str:
    """The digest of everything but the time that the build of `site` reads."""
    digest = hashlib.sha256(code_digest())
    settings = config.settings
    digest.update(settings_text(settings, skip=NO_OUTPUT_SETTINGS).encode())
    for value in (config.root, config.content_dir, config.output_dir, config.tz):
        digest.update(f"{value}\0".encode())
    digest.update(repr(sorted(config.languages)).encode())
    files_digest(digest, config.root / settings.render.static_dir)
    items = [*site.all_items(), *(i for own in site.translations.values() for i in own.values())]
    for language, own in sorted(site.translations.items()):
        digest.update(f"{language}:{sorted(own)}\0".encode())
    for item in items:
        digest.update(type(item).__name__.encode() + site.digest(item) + b"\0")
    digest.update(repr((sorted(site.sent), site.public_on_send, str(site.tz))).encode())
    digest.update(repr(sorted(state.feed_rows().items())).encode())
    return digest.hexdigest()


#: Values that name no instant: skipped without a look inside (most of an item's fields).
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


def _instants(value: Any, tz: tzinfo) -> list[datetime]:
    """Every instant a front matter value names (a day: its start and its end)."""
    found: list[datetime] = []
    stack = [value]
    while stack:
        value = stack.pop()
        if type(value) in _PLAIN:
            continue
        if isinstance(value, BaseModel):
            stack.extend(getattr(value, name) for name in type(value).model_fields)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, datetime):
            found.append(value if value.tzinfo else value.replace(tzinfo=tz))
        elif isinstance(value, date):
            midnight = datetime.combine(value, time(), tz)
            found += (midnight, midnight + timedelta(days=1))
    return found


def _windows(model: BaseModel) -> set[int]:
    """Every whole number of days a setting gives (its name ends in `days`), at any depth."""
    found: set[int] = set()
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found |= _windows(value)
        elif name.endswith("days") and isinstance(value, int):
            found.add(value)
    return found


#: More than a day's length can differ from 24 hours (a change of UTC offset) anywhere.
_SLACK = timedelta(days=2)


def _first_after(now: datetime, instants: list[datetime], shift: timedelta) -> datetime | None:
    """The earliest `instant + shift` after `now` of `instants`, sorted by the moment each
    names. `shift` adds days of the instant's own clock, which may be hours more or less
    than the time it names, so only instants within `_SLACK` of the answer are looked at."""
    best: datetime | None = None
    # Arithmetic on UTC values is in elapsed time: these bounds hold whatever the clocks do.
    low = now.astimezone(UTC) - shift - _SLACK
    high: datetime | None = None
    for index in range(bisect.bisect_left(instants, low), len(instants)):
        instant = instants[index]
        if high is not None and instant > high:
            break  # every later moment is later than the best
        moment = instant + shift
        if moment > now and (best is None or moment < best):
            best = moment
            high = best.astimezone(UTC) - shift + _SLACK
    return best


def until(config: Config, site: Site, state: PublishState) -> datetime:
    """The first instant after now at which the build of `site` may come out differently."""
    now = config.now()
    tz = config.tz
    local = now.astimezone(tz)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(), tz)
    limits = [now + LONGEST, tomorrow]
    items = [*site.all_items(), *(i for own in site.translations.values() for i in own.values())]
    # Each item's instants kept across builds: walking every item's fields cost 25 ms.
    memo = ItemMemo[list[datetime]](config.root, site, "instants", code_digest(), str(tz))
    instants = [moment for item in items for moment in memo.get(item, partial(_instants, tz=tz))]
    memo.save()
    for _, _, seen, changed in state.feed_rows().values():
        instants += [seen] if changed is None else [seen, changed]
    instants.sort()
    for days in {0, *_windows(config.settings)}:
        for shift in (timedelta(days=days), -timedelta(days=days)):
            first = _first_after(now, instants, shift)
            if first is not None:
                limits.append(first)
    return min(limits)


@dataclass(frozen=True)
class Record:
    """One output folder's last build: its inputs, until when it holds, its files' stamp."""

    inputs: str
    until: datetime
    folder: str


def _record_file(config: Config, out_dir: Path) -> Path:
    name = hashlib.sha256(os.path.realpath(out_dir).encode()).hexdigest()[:32]
    return config.root / RECORD_DIR / f"{name}.json"


def _folder_stamp(
    out_dir: Path, manifest: Path, known: Mapping[str, tuple[int, int]] | None = None
) -> str | None:
    """The digest of the size and mtime of every file the manifest lists (and its own).

    A build leaves unchanged files alone, so this changes only when a build wrote something or
    a person or another program touched, replaced or removed a file. `known` holds (size,
    mtime) of listed paths as the build just wrote or checked them (the page cache's): those
    are not looked at again, so a change made since is one the next build sees.
    """
    digest = hashlib.sha256()
    folder = f"{out_dir}/"
    known = known or {}
    try:
        paths = json.loads(manifest.read_text(encoding="utf-8"))
        found = os.stat(manifest)
        digest.update(f"{manifest}\0{found.st_mtime_ns}\0{found.st_size}\0".encode())
        # Plain strings and os.stat: 16,000 pathlib paths cost a fifth of a second.
        for name in paths:
            path = folder + name
            stamp = known.get(name)
            if stamp is None:
                found = os.stat(path)
                stamp = (found.st_size, found.st_mtime_ns)
            digest.update(f"{path}\0{stamp[1]}\0{stamp[0]}\0".encode())
    except (OSError, ValueError, TypeError):
        return None
    return digest.hexdigest()


@contextmanager
def building(config: Config, out_dir: Path) -> Iterator[None]:
    """Hold the lock of `out_dir`'s builds across processes (checking, writing, recording)."""
    lock = _record_file(config, out_dir).with_suffix(".lock")
    try:
        private_dir(lock.parent)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield  # no var/ to lock in: builds interleave as before, and nothing is recorded
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_record(config: Config, out_dir: Path) -> tuple[Record, dict[str, Any]] | None:
    """The folder's record and its raw JSON (None when there is none or it is broken)."""
    try:
        raw = json.loads(_record_file(config, out_dir).read_text(encoding="utf-8"))
        record = Record(raw["inputs"], datetime.fromisoformat(raw["until"]), str(raw["folder"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record, raw


def unchanged(config: Config, out_dir: Path, manifest: Path, digest: str) -> list[str] | None:
    """The paths of the recorded build if `digest` and now still match it, else None."""
    found = _read_record(config, out_dir)
    if found is None:
        return None
    record = found[0]
    if record.inputs != digest:
        return None
    return _still(config, out_dir, manifest, record)


def _still(config: Config, out_dir: Path, manifest: Path, record: Record) -> list[str] | None:
    """The recorded build's paths if it is before its `until` and the folder is as it left it."""
    if not config.now() < record.until:
        return None
    if _folder_stamp(out_dir, manifest) != record.folder:
        return None  # another build or a person changed the folder since
    try:
        paths = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(path) for path in paths]


def remember(
    config: Config,
    out_dir: Path,
    manifest: Path,
    digest: str,
    valid: datetime,
    stamps: Stamps | None = None,
    written: Mapping[str, tuple[int, int]] | None = None,
    *,
    state: PublishState,
) -> None:
    """Record that the build of `digest` is in `out_dir` (a failure only costs a rebuild),
    with the `stamps` taken before the build read its inputs from `state`; `written`: (size,
    mtime) of the output paths the build wrote or found fresh (`PageCache.stamps`)."""
    stamp = _folder_stamp(out_dir, manifest, written)
    if stamp is None:
        return
    record: dict[str, Any] = {"inputs": digest, "until": valid.isoformat(), "folder": stamp}
    _write(config, out_dir, manifest, record, stamps, state)


def restamp(
    config: Config, out_dir: Path, manifest: Path, stamps: Stamps | None, *, state: PublishState
) -> None:
    """Add `stamps` to the record that a build from `state` just found unchanged
    (`unchanged`), so that the next build with the same stamps is skipped without reading the
    site."""
    found = _read_record(config, out_dir)
    if found is not None and stamps is not None:
        _write(config, out_dir, manifest, found[1], stamps, state)


def _write(
    config: Config,
    out_dir: Path,
    manifest: Path,
    record: dict[str, Any],
    stamps: Stamps | None,
    published: PublishState,
) -> None:
    record = {key: value for key, value in record.items() if key != "stamps"}
    if stamps is not None and not stamps.racy and stamps.state is not None:
        if _on_server(config):
            # A server: as the build's own connection sees it, so that the stamps count only
            # where both reached the same database (or a send started in between).
            state = published.server_stamp()
        else:
            state = _state_stamp(config)
        # The state the build read, or the state file as the build itself wrote it (its feed
        # history). Anything else was written meanwhile by another process (a send that
        # started after the build read the state, a build of another output folder): then no
        # stamps.
        if state is not None and (state == stamps.state or state == published.written_stamp()):
            record["stamps"] = {
                "inputs": stamps.inputs,
                "state": state,
                "manifest": str(manifest),
                "notes": list(stamps.notes),
            }
    try:
        write_private(_record_file(config, out_dir), json.dumps(record).encode())
    except OSError:
        pass


@dataclass(frozen=True)
class Stamps:
    """The stamps of everything a build reads, taken before it reads it (`take_stamps`)."""

    #: The digest of the configuration as loaded and of every input file's stamp.
    inputs: str
    #: The publishing state's stamp (`_state_stamp`).
    state: str | None
    #: A file changed within SETTLE before the stamps: they cannot show its next change.
    racy: bool
    #: What the command printed about its input (content warnings), printed again by a skip.
    notes: tuple[str, ...] = ()


def _tree(digest: Any, folder: Path, since: int, code: bool = False) -> bool | None:
    """Add the stamp of every file under `folder` to `digest`: whether one changed `since`
    (ns, the file system's clock) or later; None if a folder is a symbolic link or cannot be
    listed (then the build reads to decide). `code`: a package, whose bytecode (as
    `code_digest`) is left out."""
    racy = False
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            entries = sorted(os.scandir(folder / prefix if prefix else folder), key=_name)
        except FileNotFoundError:
            digest.update(_bytes(f"{prefix}\0-\0"))
            continue
        except OSError:
            return None
        for entry in entries:
            name = f"{prefix}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if not (code and entry.name == "__pycache__"):
                    pending.append(f"{name}/")
                continue
            if code and entry.name.endswith(".pyc"):
                continue
            if entry.is_symlink() and entry.is_dir():
                return None  # the readers follow it; its files are not stamped here
            try:
                found = entry.stat()
            except FileNotFoundError:
                digest.update(_bytes(f"{name}\0-\0"))  # a broken link
                continue
            except OSError:
                return None
            racy = racy or found.st_mtime_ns >= since
            digest.update(_bytes(f"{name}\0{found.st_size}\0{found.st_mtime_ns}\0{found.st_ino}\0"))
    return racy


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _bytes(text: str) -> bytes:
    """`text` as UTF-8, a file name's undecodable bytes as they were."""
    return text.encode("utf-8", "surrogateescape")


def _on_server(config: Config) -> bool:
    """Whether the publishing state lives on a database server (its stamp is a query)."""
    return sqlite_file(config.database_url) is None


def _state_stamp(config: Config) -> str | None:
    """The publishing state's stamp: the bytes of var/feeds-state.json while there is no
    database (`FileState`), the stamps of an SQLite database's files, a digest of a server's
    rows (comms.core.server_state; None where it cannot be taken)."""
    database = sqlite_file(config.database_url)
    if database is None:
        return server_stamp(config.database_url)
    if not database.is_file():
        try:
            data = (config.root / STATE_FILE).read_bytes()
        except FileNotFoundError:
            data = b""
        return file_state_stamp(data)
    parts = []
    for path in (f"{database}", f"{database}-wal", f"{database}-journal"):
        try:
            found = os.stat(path)
        except FileNotFoundError:
            parts.append("-")
            continue
        # An open connection keeps an empty write-ahead log: nothing written (yet).
        empty = found.st_size == 0 and path != f"{database}"
        parts.append("-" if empty else f"{found.st_size}:{found.st_mtime_ns}:{found.st_ino}")
    return "sqlite:" + "|".join(parts)


def take_stamps(config: Config, out_dir: Path, *, publishing: bool = True) -> Stamps | None:
    """Stamp what the build of `out_dir` reads, before it reads it; None where it cannot.
    Without `publishing`, not the publishing state (`comms check` does not read it, and need
    not reach a database server)."""
    now = file_clock(_record_file(config, out_dir).with_suffix(".lock"))
    if now is None:
        return None
    since = now - SETTLE
    database = sqlite_file(config.database_url) if publishing else None
    state = _state_stamp(config) if publishing else None
    racy = False
    if database is not None and database.is_file():
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-journal")):
            try:
                racy = racy or os.stat(path).st_mtime_ns >= since
            except FileNotFoundError:
                pass
    digest = hashlib.sha256(f"{comms.__version__}\0".encode())
    digest.update(settings_text(config.settings).encode())
    for value in (config.root, config.content_dir, config.output_dir, config.tz):
        digest.update(_bytes(f"{value}\0"))
    digest.update(repr(sorted(config.languages)).encode())
    # The file too, not only the settings it gives: `comms check` reports at its lines.
    toml = config.path or config.root / "comms.toml"
    try:
        found = os.stat(toml)
        digest.update(_bytes(f"{toml}\0{found.st_size}\0{found.st_mtime_ns}\0{found.st_ino}\0"))
        racy = racy or found.st_mtime_ns >= since
    except FileNotFoundError:
        digest.update(_bytes(f"{toml}\0-\0"))
    except OSError:
        return None
    folders = (
        (Path(comms.__file__).parent, True),
        (config.content_dir, False),
        (config.root / config.settings.render.static_dir, False),
    )
    for folder, code in folders:
        digest.update(_bytes(f"\0{folder}\0"))
        own = hashlib.sha256(_bytes(f"{folder}\0")) if code else digest
        changed = _tree(own, folder, since, code)
        if changed is None:
            return None
        if code:
            digest.update(own.digest())
            _settle_code(None if changed else (config.root / CODE_FILE, own.hexdigest()))
        racy = racy or changed
    return Stamps(digest.hexdigest(), state, racy)


def _settle_code(settled: tuple[Path, str] | None) -> None:
    """Let `code_digest` keep its digest in the file under the package's stamps (None: they
    are racy, or the package was not stamped)."""
    global _settled_code
    _settled_code = settled


def skipped(config: Config, out_dir: Path, stamps: Stamps) -> tuple[list[str], list[str]] | None:
    """The paths and notes of the recorded build if `stamps`, the state, the time and the
    folder still match it: then a build would write the same bytes. None otherwise."""
    with building(config, out_dir):
        found = _read_record(config, out_dir)
        if found is None:
            return None
        record, raw = found
        kept = raw.get("stamps")
        if not isinstance(kept, dict) or kept.get("inputs") != stamps.inputs:
            return None
        # A server's stamp as `stamps` took it a moment ago (one query per build, not two); a
        # change since is one after the build, which the next build sees.
        state = stamps.state if _on_server(config) else _state_stamp(config)
        if kept.get("state") is None or kept.get("state") != state:
            return None
        paths = _still(config, out_dir, Path(str(kept.get("manifest"))), record)
        if paths is None:
            return None
        notes = kept.get("notes")
        return paths, [str(note) for note in notes] if isinstance(notes, list) else []
