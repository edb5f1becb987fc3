"""The content cache in var/: unchanged files are not read again, changed ones always are."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from comms.content import reader
from comms.content.content_cache import CACHE_DIR, PACK
from comms.content.front_matter import parse_yaml
from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.errors import ContentError

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
