"""Work a build shares between its pages, editions and runs (item dumps, feed entry order,
content cache entries) never hands one page or edition what another one was made from."""

from __future__ import annotations

import io
import json
import pickle
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from comms.content.content_cache import CACHE_DIR, PACK
from comms.content.models import Item, Site
from comms.content.site import read_site
from comms.content.translation_files import edition_site
from comms.core.config import Config, load_config
from comms.core.languages import Edition, site_editions
from comms.publish.feed_entry import Entry, Published
from comms.publish.feed_state import digest as feed_digest
from comms.publish.item_memo import ItemMemo
from comms.publish.page_cache import Fingerprints
from comms.publish.state import STATE_FILE, FeedRow, FileState, feed_file_text


def _config(site: Path) -> Config:
    return load_config(site / "comms.toml", environ={})


def test_an_item_changed_after_its_digest_was_made_gets_its_own_key(site_copy: Path) -> None:
    config = _config(site_copy)
    site, _ = read_site(config)
    prints = Fingerprints(config, site)
    event = next(iter(site.events.values()))
    before = prints.key(event)
    changed = event.model_copy(update={"title": f"{event.title} (verschoben)"})

    assert prints.key(changed) != before
    assert site.digest(changed) != site.digest(event)
    # The same item in a list or a mapping is described by the same digest as on its own.
    assert prints.key([event]) == prints.key([event]) != prints.key([changed])
    assert prints.key({"item": event}) != prints.key({"item": changed})
    assert prints.key(event) == before


def test_a_key_begun_once_for_many_files_is_the_key_of_all_its_values(site_copy: Path) -> None:
    config = _config(site_copy)
    site, _ = read_site(config)
    prints = Fingerprints(config, site)
    edition = site_editions(config).all[0]
    first, second = list(site.events.values())[:2]
    prefix = prints.prefix("calendar", edition, ())
    # Each key of a prefix is the key of the prefix's values followed by its own, and a key
    # taken from the prefix leaves it as it was for the next.
    assert prefix.key([first], None) == prints.key("calendar", edition, (), [first], None)
    assert prefix.key([second], None) == prints.key("calendar", edition, (), [second], None)
    assert prefix.key([first], None) != prefix.key([second], None)
    assert prefix.key_or_none(object()) is None
    # A frozen dataclass (the edition) is described by its fields, as before it was kept.
    other = Fingerprints(config, site)
    assert other.key(edition) == prints.key(edition)
    assert prints.key(edition) != prints.key(site_editions(config).all[1])


def _entries_alone(
    config: Config, home: Edition, site: Site, edition: Edition, shown: Site
) -> list[Entry]:
    """`edition`'s entries from a Published that worked out its order afresh for it (after
    the home edition's, as a build makes them), not shared from the home edition."""
    alone = Published(config, FileState(config.root))
    alone.entries(home, site)
    alone._order = None  # worked out afresh for this edition
    return alone.entries(edition, shown)


def test_editions_that_share_the_site_share_its_entries_in_their_own_words(
    site_copy: Path,
) -> None:
    config = _config(site_copy)
    site, _ = read_site(config)
    editions = site_editions(config).all
    home, others = editions[0], editions[1:]
    shared = Published(config, FileState(config.root))
    shared.entries(home, site)
    for edition in others:
        shown = edition_site(site, edition.language)
        reused = shared.entries(edition, shown)
        fresh = _entries_alone(config, home, site, edition, shown)
        assert [(e.item, e.id, e.stamp) for e in reused] == [(e.item, e.id, e.stamp) for e in fresh]
        assert all(e._facts.edition == edition for e in reused)
    # An edition with translations shows them, not the originals another edition shared.
    translated = next(e for e in others if site.translations.get(e.language))
    shown = edition_site(site, translated.language)
    items = {e.item.uid: e.item for e in shared.entries(translated, shown)}
    for uid, item in site.translations[translated.language].items():
        if uid in items:
            assert items[uid] is item


def test_an_edition_shares_the_sites_order_only_where_its_translations_are_stamped_alike(
    site_copy: Path,
) -> None:
    config = _config(site_copy)
    site, _ = read_site(config)
    home, *others = site_editions(config).all
    translated = next(e for e in others if site.translations.get(e.language))
    uid, item = next(iter(site.translations[translated.language].items()))
    later = datetime(2031, 1, 1, tzinfo=UTC)
    for changed in (None, item.model_copy(update={"updated": later})):
        if changed is not None:  # a translation updated on its own: its stamp is its own
            site.translations[translated.language][uid] = changed
        shown = edition_site(site, translated.language)
        shared = Published(config, FileState(config.root))
        shared.entries(home, site)
        reused = shared.entries(translated, shown)
        fresh = _entries_alone(config, home, site, translated, shown)
        assert [(e.item, e.id, e.stamp) for e in reused] == [(e.item, e.id, e.stamp) for e in fresh]
        mine = next(e for e in reused if e.item.uid == uid)
        assert mine.item is (changed or item)
        assert (mine.stamp.updated == later) is (changed is not None)


def test_a_damaged_content_cache_entry_is_read_again_not_served(site_copy: Path) -> None:
    config = _config(site_copy)
    site, problems = read_site(config)
    pack = site_copy / CACHE_DIR / PACK
    entries = pickle.loads(pack.read_bytes())
    damaged = next(iter(entries))
    entries[damaged] = entries[damaged][: len(entries[damaged]) // 2]
    pack.write_bytes(pickle.dumps(entries, protocol=5))

    again, again_problems = read_site(config)
    assert again.events == site.events and again.practices == site.practices
    assert again.issues == site.issues and again_problems == problems
    rewritten = _PathUnpickler(io.BytesIO(pickle.loads(pack.read_bytes())[damaged]))
    assert rewritten.load() is not None


class _PathUnpickler(pickle.Unpickler):
    """Reads a content cache entry, whose file's own path is a reference the cache fills."""

    def persistent_load(self, pid: Any) -> Any:
        """The reference itself, in place of the path."""
        return pid


def test_the_feed_state_file_is_written_as_the_json_module_writes_it() -> None:
    seen = datetime(2020, 1, 15, 9, 30, tzinfo=UTC)
    rows: dict[str, FeedRow] = {
        'event/ä"\\\n\u2028': ("ab\x01", 3, seen, None),
        "practice/x": ("cd", 0, seen, seen + timedelta(seconds=1)),
        "issue/y": ("e", 12, seen.astimezone(timezone(timedelta(hours=2))), seen),
    }
    for chosen in ({}, rows, {"practice/x": rows["practice/x"]}):
        items = {
            uid: {
                "digest": digest,
                "sequence": sequence,
                "seen": first.isoformat(),
                "changed": changed.isoformat() if changed else None,
            }
            for uid, (digest, sequence, first, changed) in sorted(chosen.items())
        }
        expected = json.dumps({"version": 1, "items": items}, indent=1, ensure_ascii=False)
        assert feed_file_text(chosen) == expected
        assert read_back(chosen) == chosen


def read_back(rows: dict[str, FeedRow]) -> dict[str, FeedRow]:
    """`rows` written to a feed state file and read again."""
    with tempfile.TemporaryDirectory() as folder:
        state = FileState(Path(folder))
        state.save_feed_rows(rows)
        return state.feed_rows()


def test_the_feed_state_read_once_still_sees_another_writer(tmp_path: Path) -> None:
    """A state that keeps what it read still reads what another process wrote since."""
    seen = datetime(2020, 1, 15, 9, 30, tzinfo=UTC)
    mine, other = FileState(tmp_path), FileState(tmp_path)
    assert mine.feed_rows() == {}
    mine.save_feed_rows({"event/a": ("aa", 0, seen, None)})
    assert mine.feed_rows() == {"event/a": ("aa", 0, seen, None)}
    mine.feed_rows()["event/b"] = ("bb", 0, seen, None)  # a caller's copy, not the state
    other.save_feed_rows({"event/a": ("ab", 1, seen, seen)})
    assert mine.feed_rows() == {"event/a": ("ab", 1, seen, seen)}
    (tmp_path / STATE_FILE).unlink()
    assert mine.feed_rows() == {}


def test_values_kept_by_item_digest_are_made_again_for_a_changed_item(site_copy: Path) -> None:
    config = _config(site_copy)
    site, _ = read_site(config)
    event = next(iter(site.events.values()))
    made: list[str] = []

    def make(item: Item) -> str:
        made.append(item.uid)
        return feed_digest(item)

    first = ItemMemo[str](config.root, site, "test", b"code")
    assert first.get(event, make) == feed_digest(event)
    first.save()
    # Another build of the same file takes the value kept; a changed item, other code or
    # another context make it again.
    again, _ = read_site(config)
    kept = ItemMemo[str](config.root, again, "test", b"code")
    assert kept.get(again.events[event.slug], make) == feed_digest(event) and len(made) == 1
    changed = event.model_copy(update={"title": f"{event.title} (verschoben)"})
    assert kept.get(changed, make) == feed_digest(changed) != feed_digest(event)
    for code, context in ((b"other", ""), (b"code", "Europe/Vienna")):
        other = ItemMemo[str](config.root, again, "test", code, context)
        other.get(again.events[event.slug], make)
    assert len(made) == 4
