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
folder's last build.
"""

from __future__ import annotations

import bisect
import fcntl
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import comms
from comms.content.models import Site
from comms.core.config import Config
from comms.core.files import private_dir, write_private
from comms.publish.state import PublishState

#: Where the records live (one per output folder), under the configuration's folder.
RECORD_DIR = Path("var") / "cache" / "build"
#: The longest a record is trusted, whatever the content says.
LONGEST = timedelta(days=1)


@functools.lru_cache(maxsize=1)
def code_digest() -> bytes:
    """The digest of comms's package: its code, templates and catalogs (once per process)."""
    digest = hashlib.sha256(comms.__version__.encode())
    package = Path(comms.__file__).parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.digest()


def files_digest(digest: Any, folder: Path) -> None:
    """Add every file under `folder` (name and bytes) to `digest`."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")


def inputs(config: Config, site: Site, state: PublishState) -> str:
    """The digest of everything but the time that the build of `site` reads."""
    digest = hashlib.sha256(code_digest())
    settings = config.settings
    digest.update(settings.model_dump_json().encode())
    for value in (config.root, config.content_dir, config.output_dir, config.tz):
        digest.update(f"{value}\0".encode())
    digest.update(repr(sorted(config.languages)).encode())
    files_digest(digest, config.root / settings.render.static_dir)
    items = [*site.all_items(), *(i for own in site.translations.values() for i in own.values())]
    for language, own in sorted(site.translations.items()):
        digest.update(f"{language}:{sorted(own)}\0".encode())
    for item in items:
        digest.update(type(item).__name__.encode() + item.model_dump_json().encode() + b"\0")
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
    instants = _instants(items, tz)
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


def _folder_stamp(out_dir: Path, manifest: Path) -> str | None:
    """The digest of the size and mtime of every file the manifest lists (and its own).

    A build leaves unchanged files alone, so this changes only when a build wrote something or
    a person or another program touched, replaced or removed a file.
    """
    digest = hashlib.sha256()
    folder = f"{out_dir}/"
    try:
        paths = json.loads(manifest.read_text(encoding="utf-8"))
        # Plain strings and os.stat: 16,000 pathlib paths cost a fifth of a second.
        for path in [str(manifest), *(folder + p for p in paths)]:
            found = os.stat(path)
            digest.update(f"{path}\0{found.st_mtime_ns}\0{found.st_size}\0".encode())
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


def unchanged(config: Config, out_dir: Path, manifest: Path, digest: str) -> list[str] | None:
    """The paths of the recorded build if `digest` and now still match it, else None."""
    try:
        raw = json.loads(_record_file(config, out_dir).read_text(encoding="utf-8"))
        record = Record(raw["inputs"], datetime.fromisoformat(raw["until"]), str(raw["folder"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.inputs != digest or not config.now() < record.until:
        return None
    if _folder_stamp(out_dir, manifest) != record.folder:
        return None  # another build or a person changed the folder since
    try:
        paths = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(path) for path in paths]


def remember(config: Config, out_dir: Path, manifest: Path, digest: str, valid: datetime) -> None:
    """Record that the build of `digest` is in `out_dir` (a failure only costs a rebuild)."""
    stamp = _folder_stamp(out_dir, manifest)
    if stamp is None:
        return
    record = {"inputs": digest, "until": valid.isoformat(), "folder": stamp}
    try:
        write_private(_record_file(config, out_dir), json.dumps(record).encode())
    except OSError:
        pass
