"""The content cache in var/: unchanged files are not read again, changed ones always are."""

from __future__ import annotations

import os
import pickle
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
