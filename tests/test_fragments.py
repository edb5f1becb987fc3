"""The list pages' entries: rendered once per item and edition, kept between builds, so one
changed item renders one entry per edition; a damaged store or a changed template never
serves an old entry."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from comms.content.models import Item
from comms.core.config import Config, load_config
from comms.publish import archive, build_record
from comms.publish.fragments import CACHE_DIR, Entries
from comms.publish.refresh import publish_now
from comms.publish.state import FileState
from comms.publish.teasers import Teasers

from .conftest import copy_sample

pytestmark = pytest.mark.slow


def _rendered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Record every entry a build renders instead of taking it from the store: (language,
    macro, item uid)."""
    rendered: list[tuple[str, str, str]] = []
    real = Entries._render

    def recording(self: Entries, macro: str, item: Item, args: tuple[Any, ...]) -> Any:
        rendered.append((self.language, macro, item.uid))
        return real(self, macro, item, args)

    monkeypatch.setattr(Entries, "_render", recording)
    return rendered


def _rebuild(config: Config) -> None:
    """Build again past the whole-build skip, with the page cache and the fragments."""
    shutil.rmtree(config.root / build_record.RECORD_DIR, ignore_errors=True)
    publish_now(config, FileState(config.root))


def _tree(folder: Path) -> dict[str, bytes]:
    """The web pages under `folder` (feeds carry the time of a change, pages do not)."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*.html"))
        if path.is_file()
    }


def _reference(folder: Path, practice_edit: tuple[str, str] | None = None) -> dict[str, bytes]:
    """The output of a cold build of the sample (with one practice edited), nothing kept."""
    site = copy_sample(folder)
    if practice_edit is not None:
        practice = site / "content" / "practices" / "film-workshop-uelzen.md"
        practice.write_text(practice.read_text("utf-8").replace(*practice_edit, 1), "utf-8")
    config = load_config(site / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    return _tree(config.output_dir)


def test_one_changed_item_renders_its_entry_once_per_edition(
    site_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    first = _rendered(monkeypatch)
    publish_now(config, FileState(config.root))
    languages = {language for language, _, _ in first}
    assert languages == set(config.languages)
    teasers = [
        entry
        for entry in first
        if entry[1:] == ("practice_teaser", "practice/hip-hop-workshop-oyten")
    ]
    assert len(teasers) == len(languages)  # once per edition in a cold build

    edit = ("Uelzen", "Uelzen-Oldenstadt")
    practice = site_copy / "content" / "practices" / "film-workshop-uelzen.md"
    practice.write_text(practice.read_text("utf-8").replace(*edit, 1), "utf-8")
    again = _rendered(monkeypatch)
    _rebuild(config)
    uid = "practice/film-workshop-uelzen"
    assert sorted(again) == sorted((lang, "practice_teaser", uid) for lang in languages)
    assert "Uelzen-Oldenstadt" in (config.output_dir / "practices" / "index.html").read_text()
    # The pages made from kept and new entries are those of a build that kept nothing.
    assert _tree(config.output_dir) == _reference(tmp_path / "reference", edit)


def test_a_damaged_store_or_changed_code_serves_no_old_entry(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    good = _tree(config.output_dir)
    stores = sorted((config.root / CACHE_DIR).glob("*.bin"))
    assert stores

    # Every store damaged and every list page gone: each entry is rendered again.
    for store in stores:
        data = store.read_bytes()
        store.write_bytes(data[:40] + b"damaged" + data[47:])
    shutil.rmtree(config.root / "var" / "cache" / "pages")
    for page in [p for p in good if p.endswith("index.html") and p.count("/") <= 2]:
        (config.output_dir / page).unlink()
    rendered = _rendered(monkeypatch)
    _rebuild(config)
    assert ("de", "practice_teaser", "practice/film-workshop-uelzen") in rendered
    assert _tree(config.output_dir) == good

    # A changed teaser (a change of comms's code, which its digest names): every list
    # showing it has it, none of the kept entries is served.
    practice_teaser = Teasers.practice_teaser

    def changed(self: Teasers, page: Any, practice: Any, level: int = 3) -> Markup:
        return Markup("<!-- changed -->") + practice_teaser(self, page, practice, level)

    monkeypatch.setattr(Teasers, "practice_teaser", changed)
    code = build_record.code_digest()
    monkeypatch.setattr(build_record, "code_digest", lambda: code + b"changed")
    _rebuild(config)
    practices = len(list((site_copy / "content" / "practices").glob("*.md")))
    for folder in ("", "en/", "ar/"):
        listing = (config.output_dir / folder / "practices" / "index.html").read_text()
        assert listing.count("<!-- changed -->") == practices


def test_an_item_added_before_others_renders_no_entry_that_only_moved(
    site_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "PAGE_SIZE", 3)  # 7 practices: 3 pages, 8 with the new one
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    folder = site_copy / "content" / "practices"
    text = (folder / "film-workshop-uelzen.md").read_text("utf-8")
    assert text.count('title: "Geschichten in Bildern') == 1
    (folder / "aaa-erste.md").write_text(text.replace('title: "', 'title: "Aaa ', 1), "utf-8")
    rendered = _rendered(monkeypatch)
    _rebuild(config)
    # Per edition: the new practice's teaser, and the one pushed from the first page to the
    # second (whose links start from another folder); every other entry was kept, even those
    # that moved from one later page to the next.
    third = sorted(rendered)
    assert len(third) == 2 * len(config.languages)
    assert {uid for _, _, uid in third} == {"practice/aaa-erste", _third_practice(config)}
    first = config.output_dir / "practices" / "index.html"
    assert "Aaa Geschichten in Bildern" in first.read_text()
    reference = copy_sample(tmp_path / "reference")
    shutil.copy(folder / "aaa-erste.md", reference / "content" / "practices")
    again = load_config(reference / "comms.toml", environ={})
    publish_now(again, FileState(again.root))
    assert _tree(config.output_dir) == _tree(again.output_dir)


def _third_practice(config: Config) -> str:
    """The uid of the practice first on the second page: the one the new one pushed there."""
    html = (config.output_dir / "practices" / "page" / "2" / "index.html").read_text()
    slugs: list[str] = re.findall(r'<h2><a href="\.\./\.\./\.\./practices/([a-z0-9-]+)/"', html)
    return f"practice/{slugs[0]}"
