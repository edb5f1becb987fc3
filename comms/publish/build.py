"""Content → every file under the output folder: collected in memory, then written atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from comms.core.collector import batch
from comms.core.forked import forked_map
from comms.core.local_faults import local_error
from comms.publish import brand, edition_build, feeds, images, render
from comms.publish.page_cache import PageCache
from comms.publish.producer import Build, Files, Producer

#: Lists what comms wrote last time, so that it removes only files it owns.
MANIFEST = ".comms-manifest.json"

# The editions come after the feeds: their feeds read the change history the site's feeds record.
PRODUCERS: list[Producer] = [
    render.site_files,
    images.sized_files,
    brand.brand_files,
    feeds.feed_files,
    edition_build.edition_files,
]


@dataclass
class WriteReport:
    """What a write changed: paths written, left untouched and removed."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        """How many files the build produced (each was written or left unchanged)."""
        return len(self.written) + len(self.unchanged)


@batch()
def collect(build: Build) -> Files:
    """Run every producer on `build` and merge their files; two may not claim one path."""
    files = Files()
    for producer in PRODUCERS:
        produced = producer(build)
        for path in produced:
            if path in files:
                raise ValueError(f"two producers write {path}")
        files.add(produced)
    return files


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _first_build(out_dir: Path, files: dict[str, bytes]) -> WriteReport:
    """Write a whole new output folder beside the target, then rename it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        # Each folder made once: a mkdir per file was a tenth of a cold build's writing.
        for folder in sorted({str(Path(path).parent) for path in files} - {"."}):
            (staging / folder).mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            with open(f"{staging}/{path}", "wb") as handle:
                handle.write(data)
        (staging / MANIFEST).write_text(json.dumps(sorted(files), indent=0), encoding="utf-8")
        staging.chmod(0o755)
        os.rename(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if not out_dir.is_dir():
            # Name the file as it would have been: the staging folder is gone.
            if exc.filename and Path(exc.filename).is_relative_to(staging):
                exc.filename = str(out_dir / Path(exc.filename).relative_to(staging))
            raise
        # Another process (a second server, a send) made the folder first: bring it to ours.
        return _write(out_dir, files)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WriteReport(written=sorted(files))


#: One writer at a time per output folder in this process (the scheduler's jobs and the
#: follower of `comms serve` run in threads); other processes are safe but may interleave.
_writing: dict[str, threading.RLock] = {}
_writing_guard = threading.Lock()


def output_lock(out_dir: Path) -> threading.RLock:
    """The lock this process's writers of `out_dir` take turns under (re-entrant)."""
    with _writing_guard:
        return _writing.setdefault(os.path.realpath(out_dir), threading.RLock())


#: Fewer files to make than this are made in this process: starting workers costs more.
PARALLEL_FROM = 2000


def make_all(files: Mapping[str, bytes], paths: list[str], processes: int = 1) -> dict[str, bytes]:
    """The bytes of `paths` in `files`, made by `processes` forked workers (0: one per core,
    `forked.workers`) when there are many, else here; a body that fails raises here either
    way."""
    tasks = _tasks(paths) if len(paths) >= PARALLEL_FROM else []
    made = forked_map(lambda task: [files[path] for path in task], tasks, processes)
    if made is None:
        return {path: files[path] for path in paths}
    pairs = (zip(task, bodies, strict=True) for task, bodies in zip(tasks, made, strict=True))
    return {path: data for pair in pairs for path, data in pair}


def _tasks(paths: list[str]) -> list[list[str]]:
    """`paths` cut into the tasks the workers take in turn: one per top folder (an edition's,
    `events/` …), largest first. The files of one folder share work made once per process
    (an edition's catalog and feed entries, the events of its calendars), so a folder stays
    in one process; a worker that is done takes the next folder, so a folder whose files
    cost more than their number says (an edition's feeds, the logos) holds no one up."""
    folders: dict[str, list[str]] = {}
    for path in sorted(paths):
        folders.setdefault(path.partition("/")[0] if "/" in path else "", []).append(path)
    return sorted(folders.values(), key=len, reverse=True)


@batch()
def write_output(
    out_dir: Path,
    files: Mapping[str, bytes],
    cache: PageCache | None = None,
    processes: int = 1,
) -> WriteReport:
    """Write `files` under `out_dir`: only changed files, each atomically; drop stale ones.

    A new output folder appears whole (built beside it, then renamed). In an existing one,
    unchanged files keep their bytes and mtime (so ETags and feed readers see no change), and
    files comms wrote before but no longer produces are removed; files it never wrote are kept.
    Every body is made before the first file is written: one that fails writes nothing. With
    a page `cache`, a file whose inputs and output file are as the cache recorded is neither
    made nor read, and one whose inputs were made before is taken from the cache. Many files
    to make are made by `processes` workers (`make_all`).
    """
    for path in files:
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"refusing to write outside the output folder: {path}")
    keys = {path: None if cache is None else getattr(files, "key", _no_key)(path) for path in files}
    with output_lock(out_dir):
        fresh = set()
        if cache is not None:
            fresh = {path for path, key in keys.items() if key and cache.fresh(path, key)}
        made: dict[str, bytes] = {}
        for path, key in keys.items():
            if path not in fresh and key is not None and cache is not None:
                kept = cache.kept(key)
                if kept is not None:
                    made[path] = kept
        todo = [path for path in files if path not in fresh and path not in made]
        made.update(make_all(files, todo, processes))
        try:
            report = _write(out_dir, made, fresh)
        except OSError as exc:
            # A full disk or a read-only folder: one line with the path and the space the
            # output needs (what is written already stays; the next build completes it).
            raise local_error(exc, out_dir, sum(len(data) for data in made.values())) from exc
        if cache is not None:
            for path in fresh:
                cache.keep_fresh(path)
            for path, data in made.items():
                cache.keep(path, keys[path], data)
            cache.save()
        return report


def _no_key(path: str) -> None:
    return None


def _write(out_dir: Path, files: dict[str, bytes], fresh: Collection[str] = ()) -> WriteReport:
    """Write `files`; `fresh` are produced too, and known to be on disk as they should be."""
    if not out_dir.exists():
        return _first_build(out_dir, files)
    report = WriteReport(unchanged=list(fresh))
    for path in sorted(files):
        target = out_dir / path
        try:
            same = target.read_bytes() == files[path]
        except OSError:
            same = False
        if same:
            report.unchanged.append(path)
        else:
            _atomic_write(target, files[path])
            report.written.append(path)
    manifest = out_dir / MANIFEST
    try:
        previous = set(json.loads(manifest.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        previous = set()
    produced = set(files) | set(fresh)
    for path in sorted(previous - produced):
        target = out_dir / path
        if target.is_file():
            target.unlink(missing_ok=True)  # another process may have removed it just now
            report.removed.append(path)
    report.unchanged.sort()
    listing = json.dumps(sorted(produced), indent=0).encode("utf-8")
    if not manifest.is_file() or manifest.read_bytes() != listing:
        _atomic_write(manifest, listing)
    return report
