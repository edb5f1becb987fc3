"""The content cache in var/: unchanged files are not read again, changed ones always are."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from comms.content import content_cache, reader
from comms.content.content_cache import CACHE_DIR, PACK, STAMPS
from comms.content.front_matter import parse_yaml
from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.errors import ContentError
from comms.core.files import Stamp, file_stamp

EVENT = "events/2019-05-07-integrationsdialog-laatzen.md"


_READ = reader._read_bytes


def _no_reading(path: Path, raw: bytes, kind: Any, context: Any, original: Any) -> Any:
    # Translations (a handful, read against their original) are not cached.
    if original is None:
        raise AssertionError(f"{path} was read again")
    return _READ(path, raw, kind, context, original)


def _entries(site: Path) -> list[str]:
    return sorted(pickle.loads((site / CACHE_DIR / PACK).read_bytes()))


def test_an_unchanged_site_comes_from_the_cache(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    site, problems = read_site(config)
    folder = site_copy / CACHE_DIR
    entries = _entries(site_copy)
    originals = [p for p in (site_copy / "content").rglob("*.md") if p.name.count(".") == 1]
    assert len(entries) == len(originals)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / PACK).stat().st_mode & 0o777) == "0o600"
    with monkeypatch.context() as patch:
        patch.setattr(reader, "_read_bytes", _no_reading)
        again, again_problems = read_site(config)
    assert again.events == site.events and again.issues == site.issues
    assert again_problems == problems
    assert _entries(site_copy) == entries


def test_a_changed_file_is_read_again_and_its_old_entry_goes(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    read_site(config)
    before = set(_entries(site_copy))
    path = site_copy / "content" / EVENT
    path.write_text(
        path.read_text("utf-8")
        .replace("title:", "title: Geändert", 1)
        .replace("Geändert ", "Geändert – ", 1),
        "utf-8",
    )
    site, _ = read_site(config)
    assert site.events[path.stem].title.startswith("Geändert")
    after = set(_entries(site_copy))
    assert len(after) == len(before) and len(after - before) == 1


def test_the_fast_parser_still_refuses_anchors_and_names_yaml_errors() -> None:
    path = Path("events/x.md")
    anchored = parse_yaml("title: &t Titel\nsummary: *t\n", path)
    assert isinstance(anchored, ContentError)
    assert "anchors and aliases" in anchored.message and anchored.line == 2
    broken = parse_yaml('title: "offen\nsummary: x\n', path)
    assert isinstance(broken, ContentError) and "quote is not closed" in broken.message
    data, doc = parse_yaml("title: Titel\ntopics:\n  - sprache\n", path)  # type: ignore[misc]
    assert data == {"title": "Titel", "topics": ["sprache"]}
    assert doc.find(("topics", 0)) == (4, True)


def _stamps_of(site: Path) -> dict[Any, Any]:
    """The stamps the content cache recorded (none if it recorded none)."""
    try:
        _, stamps = pickle.loads((site / CACHE_DIR / STAMPS).read_bytes())
    except FileNotFoundError:
        return {}
    return dict(stamps)


def _settled(monkeypatch: pytest.MonkeyPatch, seconds: int = 3600) -> None:
    """Files read from now on count as changed long before the reading (their stamps are
    recorded): the files of a fresh copy are seconds old, and their ctime cannot be set back."""
    monkeypatch.setattr(content_cache, "SETTLE", -seconds * 1_000_000_000)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The content files whose bytes are read from now on."""
    read: list[Path] = []
    real = Path.read_bytes

    def reading(self: Path) -> bytes:
        if self.suffix == ".md":
            read.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", reading)
    return read


def test_an_unchanged_file_with_a_settled_stamp_is_not_read_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    _settled(monkeypatch)
    site, problems = read_site(config)
    read = _count_reads(monkeypatch)
    again, again_problems = read_site(config)
    # Only translations, and the originals they are checked against, are read.
    translated = {p.parent / f"{p.name.split('.')[0]}.md" for p in read if p.name.count(".") > 1}
    assert read and set(read) <= translated | {p for p in read if p.name.count(".") > 1}
    assert again.events == site.events and again.issues == site.issues
    assert again_problems == problems


def test_a_file_replaced_with_the_same_size_and_mtime_is_read_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`touch -r` keeps the mtime, and an edit of one letter the size: the ctime shows it."""
    config = load_config(site_copy / "comms.toml", environ={})
    _settled(monkeypatch)
    read_site(config)
    path = site_copy / "content" / EVENT
    before = path.stat()
    text = path.read_text("utf-8")
    path.write_text(text.replace("Regionaler", "Regionalex", 1), "utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    site, _ = read_site(config)
    assert site.events[path.stem].title.startswith("Regionalex ")


def test_a_file_edited_within_the_settle_time_is_read_again_even_with_the_same_stamp(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system with a coarse clock gives an edit in the same tick the same stamp: a
    stamp taken within SETTLE of a change is not trusted (git's racily clean files)."""
    config = load_config(site_copy / "comms.toml", environ={})
    now = time.time_ns()

    def coarse(path: Path) -> Stamp | None:
        # Size, device and inode as they are; mtime and ctime stuck in this clock tick.
        found = file_stamp(path)
        return None if found is None else (found[0], found[1], found[2], now, now)

    monkeypatch.setattr(content_cache, "file_stamp", coarse)
    read_site(config)
    path = site_copy / "content" / EVENT
    text = path.read_text("utf-8")
    path.write_text(text.replace("Regionaler", "Regionalex", 1), "utf-8")
    site, _ = read_site(config)
    assert site.events[path.stem].title.startswith("Regionalex ")
    assert str(path) not in {seen[0] for seen in _stamps_of(site_copy)}


def test_a_deleted_file_is_gone_and_a_new_one_in_its_place_is_read(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    _settled(monkeypatch)
    read_site(config)
    path = site_copy / "content" / EVENT
    text, before = path.read_text("utf-8"), path.stat()
    path.unlink()
    site, _ = read_site(config)
    assert path.stem not in site.events
    assert str(path) not in {seen[0] for seen in _stamps_of(site_copy)}
    path.write_text(text.replace("Regionaler", "Regionalex", 1), "utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    site, _ = read_site(config)
    assert site.events[path.stem].title.startswith("Regionalex ")


#: Run in a fresh process: beside the test process's other threads nothing forks.
SHARED_READING = """
import json, os, sys
from pathlib import Path
from comms.content import reader
from comms.content.content_cache import ContentCache
from comms.core.config import load_config

root = Path(sys.argv[1])
config = load_config(root / "comms.toml", environ={})
settings = config.settings
reader.PARALLEL_READ_FROM, reader.READ_TASK = 2, 3  # the sample's few files are "many"
here = []
real = reader._read_bytes

def counted(*args):
    here.append(os.getpid())  # a worker appends to its own copy of the list
    return real(*args)

reader._read_bytes = counted

def read(processes, cache):
    here.clear()
    site, errors = reader.read_content(
        config.content_dir, config.tz, settings.regions, settings.topics,
        ContentCache(root / cache), None, processes,
    )
    items = {f"{kind}/{slug}": repr(item)
             for kind in ("events", "practices", "awards", "issues")
             for slug, item in getattr(site, kind).items()}
    return {"items": items, "errors": [repr(e) for e in errors], "here": len(here)}

print(json.dumps({
    "one": read(1, "cache-1"),
    "shared": read(2, "cache-2"),
    "again": read(2, "cache-2"),
}))
"""


def test_many_files_the_cache_lacks_are_read_by_workers_with_the_same_result(
    site_copy: Path,
) -> None:
    """A reading shared out to forked workers gives the same items and errors, in the same
    order, as one process, and keeps the same entries: the next reading reads nothing."""
    events = site_copy / "content" / "events"
    bad = events / "2020-09-01-kaputt.md"
    bad.write_text("---\ntitle: Kaputt\nstart: gestern\n---\nText\n", encoding="utf-8")
    answer = subprocess.run(
        [sys.executable, "-c", SHARED_READING, str(site_copy)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    readings = json.loads(answer.stdout.splitlines()[-1])
    one, shared, again = readings["one"], readings["shared"], readings["again"]
    assert one["items"] and one["errors"] and any("kaputt" in e for e in one["errors"])
    # In the same order: the items as read, the errors as found.
    assert list(shared["items"].items()) == list(one["items"].items())
    assert shared["errors"] == one["errors"]
    files = sum(1 for _ in (site_copy / "content").rglob("*.md"))
    assert one["here"] >= len(one["items"]) and shared["here"] == 0  # all read by workers
    assert again["here"] == 0 and again["items"] == one["items"]
    assert again["errors"] == one["errors"] and files > 2
