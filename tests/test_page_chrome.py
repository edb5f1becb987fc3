"""Item and list pages made from a layout rendered once are the pages a plain render makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish import archive
from comms.publish.build import collect
from comms.publish.page_chrome import Chrome
from comms.publish.producer import Build
from comms.publish.state import ScratchState


def _pages(root: Path) -> dict[str, bytes]:
    config = load_config(root / "comms.toml")
    site, _ = read_site(config)
    files = collect(Build(config, site, ScratchState()))
    return {path: files[path] for path in files if path.endswith(".html")}


def _whole(cls: type[Chrome], *args: Any) -> None:
    return None


def test_pages_are_the_bytes_of_a_plain_render(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lists paged at 3 entries: first, middle and last pages of a list (their neighbours'
    # links in the head), and lists of one page.
    monkeypatch.setattr(archive, "PAGE_SIZE", 3)
    spliced = _pages(site_copy)
    monkeypatch.setattr(Chrome, "make", classmethod(_whole))  # every page rendered whole
    plain = _pages(site_copy)
    assert spliced.keys() == plain.keys()
    differ = [path for path in plain if spliced[path] != plain[path]]
    assert differ == []
    # The sample has what the layout varies by: translated items (their languages' links)
    # beside items in one language, item pages of every kind, in editions.
    assert any(b'rel="alternate" hreflang=' in page for page in plain.values())
    assert any(b'rel="alternate" hreflang=' not in page for page in plain.values())
    folders = {path.split("/")[0] for path in plain}
    assert folders >= {"events", "practices", "awards", "issues", "en", "ar"}
    heads = [page.split(b"</head>")[0] for page in plain.values()]
    for rels in ((b'rel="prev"', b'rel="next"'), (b'rel="prev"',), (b'rel="next"',)):
        assert any(all(rel in head for rel in rels) for head in heads), rels
    assert "en/events/page/3/index.html" in plain


def test_a_layout_that_reads_more_than_it_is_given_is_not_kept() -> None:
    # The layout reads `lang`, `site` …: without them it cannot be rendered on its own, and
    # its pages are rendered whole.
    assert Chrome.make("web", "event.html.j2", "de", {}) is None
