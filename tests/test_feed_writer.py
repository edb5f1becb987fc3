"""RSS items and Atom entries written by `feeds._written` are the bytes feedgen writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from feedgen.feed import FeedGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.render import synthetic_site
from comms.content.site import read_site
from comms.core.config import Config, load_config
from comms.publish import feeds
from comms.publish.build import collect
from comms.publish.feed_entry import Entry
from comms.publish.producer import Build
from comms.publish.state import ScratchState

from .conftest import copy_sample


def _feeds(root: Path) -> dict[str, bytes]:
    config = load_config(root / "comms.toml")
    site, _ = read_site(config)
    files = collect(Build(config, site, ScratchState()))
    return {path: files[path] for path in files if path.rpartition("/")[2] in feeds.FEED_FILES}


def _compare(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = _feeds(root)
    monkeypatch.setattr(feeds, "_written", lambda *args: None)  # every entry through feedgen
    made = _feeds(root)
    assert written.keys() == made.keys()
    assert [path for path in made if written[path] != made[path]] == []
    assert any(path.startswith("en/") for path in made)
    assert sum(page.count(b"<item>") for page in made.values()) > 50


def test_the_feeds_of_the_sample_are_feedgen_s_bytes(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _compare(site_copy, monkeypatch)


@pytest.mark.slow
def test_the_feeds_of_a_generated_site_are_feedgen_s_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sample (its editions and translations) with 60 generated events and practices.
    site = copy_sample(tmp_path / "site")
    (tmp_path / "generated").mkdir()
    synthetic_site(tmp_path / "generated", 60, 60, 0)
    for sub in ("events", "practices"):
        for path in sorted((tmp_path / "generated" / "content" / sub).iterdir()):
            (site / "content" / sub / path.name).write_bytes(path.read_bytes())
    _compare(site, monkeypatch)


def _feedgen(config: Config, entry: Entry, fmt: str) -> bytes:
    """The entry as feedgen writes it inside a feed (what `_written` stands in for)."""
    fg = FeedGenerator()
    fg.id("tag:x.test,2015:feed")
    fg.title("T")
    fg.description("D")
    fg.link(href="https://x.test/", rel="alternate")
    fg.entry([feeds._feed_entry(config, entry)])
    data: bytes = fg.rss_str(pretty=True) if fmt == "rss" else fg.atom_str(pretty=True)
    ((start, end),) = feeds._spans(data, fmt)
    return data[start:end]


_TEXT = st.text(
    alphabet=st.sampled_from(list("aZé€😀&<>\"'\r\n\t ;,\\]]\x7f\u2028")), min_size=1, max_size=12
)
#: A value feedgen and lxml refuse or word otherwise: empty, or with characters XML refuses.
_ODD = st.sampled_from(["", "\x00", "a\x0b", "\ud800", "\ufffe"])
_WHEN = st.datetimes(
    min_value=datetime(1999, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(_TEXT, min_size=7, max_size=7),
    odd=st.none() | st.tuples(st.integers(1, 6), _ODD),  # the sender is `clean`ed
    categories=st.lists(st.tuples(_TEXT, _TEXT, _TEXT), max_size=3),
    published=_WHEN,
    updated=_WHEN,
)
def test_an_entry_is_feedgen_s_bytes_or_left_to_feedgen(
    texts: list[str],
    odd: tuple[int, str] | None,
    categories: list[tuple[str, str, str]],
    published: datetime,
    updated: datetime,
) -> None:
    # Odd text (markup, quotes, CR, tabs, astral characters) is written as lxml writes it;
    # an empty value or one XML refuses goes to feedgen, which words it (or fails) as before.
    if odd is not None:
        texts[odd[0]] = odd[1]
    name, email, *fields = texts
    people = {
        "sender": SimpleNamespace(name=name),
        "organisation": SimpleNamespace(email=email),
    }
    config = cast(Config, SimpleNamespace(settings=SimpleNamespace(**people)))
    made: Any = SimpleNamespace(
        id=fields[0],
        title=fields[1],
        url=fields[2],
        summary=fields[3],
        html=fields[4],
        categories=tuple(categories),
        stamp=SimpleNamespace(published=published, updated=updated, sequence=0),
    )
    entry = cast(Entry, made)
    for fmt in ("rss", "atom"):
        written = feeds._written(config, entry, fmt)
        assert (written is None) == (odd is not None)
        if written is not None:
            assert written == _feedgen(config, entry, fmt)
