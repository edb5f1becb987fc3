"""A build that would write the same bytes is skipped; any input, the time or the folder
changing makes it build again."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pydantic import BaseModel

from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.files import read_checked, write_checked
from comms.publish import build, build_record
from comms.publish.producer import Build, Files
from comms.publish.refresh import publish_now
from comms.publish.state import FileState, ScratchState


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the builds that run their producers."""
    runs: list[int] = []
    real = build.collect

    def collect(made: Build) -> Files:
        runs.append(1)
        return real(made)

    monkeypatch.setattr(build, "collect", collect)
    return runs


def test_a_rebuild_with_nothing_changed_is_skipped_and_any_change_builds(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _counting(monkeypatch)
    config = load_config(site_copy / "comms.toml", environ={})
    state = FileState(config.root)
    first = publish_now(config, state)
    assert len(runs) == 1 and first.write.written
    # The first build recorded every item in the feed history; the next one starts from it.
    assert state.feed_rows()
    again = publish_now(config, state)
    assert len(runs) == 1, "nothing changed, yet the site was built again"
    assert sorted(again.write.unchanged) == sorted(first.write.written)
    assert again.write.written == []

    event = next((site_copy / "content" / "events").glob("2019-05-07-*.md"))
    event.write_text(event.read_text("utf-8").replace("Laatzen", "Laatzen-Mitte"), "utf-8")
    changed = publish_now(config, state)
    assert len(runs) == 2 and changed.write.written

    (site_copy / "public" / "index.html").unlink()
    restored = publish_now(config, state)
    assert len(runs) == 3, "a folder changed since is built again"
    assert restored.write.written == ["index.html"]


def test_settings_that_change_no_byte_build_nothing_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transport (`comms send --transport`), another number of workers or another
    database leave the record valid; a setting a page shows does not."""
    runs = _counting(monkeypatch)
    toml = site_copy / "comms.toml"
    state = FileState(site_copy)
    first = publish_now(load_config(toml, environ={}), state)
    environ = {
        "COMMS_RENDER_WORKERS": "2",
        "COMMS_DATABASE_URL": "postgresql://comms@db.example.org/comms",
    }
    other = load_config(toml, environ=environ, overrides={"transport": "smtp://127.0.0.1:2525"})
    again = publish_now(other, state)
    assert len(runs) == 1, "a setting that changes no byte built the site again"
    assert sorted(again.write.unchanged) == sorted(first.write.written)

    renamed = load_config(toml, environ={"COMMS_SITE_NAME": "Niedersachsen packt an!"})
    assert publish_now(renamed, state).write.written and len(runs) == 2


def test_an_output_file_changed_before_the_build_recorded_it_is_made_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _counting(monkeypatch)
    config = load_config(site_copy / "comms.toml", environ={})
    state = FileState(config.root)
    page = site_copy / "public" / "index.html"
    real = build_record.until

    def until_after_an_edit(*args: Any) -> datetime:
        # Another program changes a page the build just wrote, before the build records.
        page.write_bytes(page.read_bytes() + b"<!-- changed -->")
        return real(*args)

    monkeypatch.setattr(build_record, "until", until_after_an_edit)
    publish_now(config, state)
    monkeypatch.setattr(build_record, "until", real)
    made = page.read_bytes()
    assert made.endswith(b"<!-- changed -->")

    # The record names the folder as the build left it: the change is seen, not trusted.
    again = publish_now(config, state)
    assert len(runs) == 2, "a page changed before the record was taken for the build's"
    assert again.write.written == ["index.html"]
    assert page.read_bytes() == made.removesuffix(b"<!-- changed -->")
    # And with nothing changed since, the next build is skipped as ever.
    publish_now(config, state)
    assert len(runs) == 2


def test_the_time_passing_an_instant_the_content_names_builds_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _counting(monkeypatch)
    toml = site_copy / "comms.toml"
    lines = toml.read_text("utf-8").splitlines(keepends=True)
    toml.write_text("".join(line for line in lines if "reference_date" not in line), "utf-8")
    config = load_config(toml, environ={})
    state = ScratchState()
    # The sample's workshop of 2020-03-25 ends at 13:30 in Berlin: upcoming before, past after.
    with time_machine.travel(datetime(2020, 3, 25, 11, 0, tzinfo=UTC), tick=False):
        publish_now(config, state)
    with time_machine.travel(datetime(2020, 3, 25, 11, 5, tzinfo=UTC), tick=False):
        publish_now(config, state)
    assert len(runs) == 1
    with time_machine.travel(datetime(2020, 3, 25, 12, 31, tzinfo=UTC), tick=False):
        moved = publish_now(config, state)
    assert len(runs) == 2 and moved.write.written


def _named(value: object, tz: ZoneInfo) -> list[datetime]:
    """Every instant a front matter value names, by the definition (a day: start and end)."""
    if isinstance(value, BaseModel):
        return [i for name in type(value).model_fields for i in _named(getattr(value, name), tz)]
    if isinstance(value, dict):
        return [i for element in value.values() for i in _named(element, tz)]
    if isinstance(value, list | tuple):
        return [i for element in value for i in _named(element, tz)]
    if isinstance(value, datetime):
        return [value if value.tzinfo else value.replace(tzinfo=tz)]
    if isinstance(value, date):
        midnight = datetime.combine(value, time(), tz)
        return [midnight, midnight + timedelta(days=1)]
    return []


def _days(model: BaseModel) -> set[int]:
    """Every whole number of days a setting gives (its name ends in `days`), at any depth."""
    found: set[int] = set()
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found |= _days(value)
        elif name.endswith("days") and isinstance(value, int):
            found.add(value)
    return found


@pytest.mark.slow
def test_until_is_the_first_instant_a_window_of_the_content_moves_past(site_copy: Path) -> None:
    # Every instant the content and the feed history name, each moved by every window of
    # the settings (in days of its own clock, so across a change of UTC offset a day has 23
    # or 25 hours), compared one by one: the answer `until` finds without looking at each.
    toml = site_copy / "comms.toml"
    lines = toml.read_text("utf-8").splitlines(keepends=True)
    toml.write_text("".join(line for line in lines if "reference_date" not in line), "utf-8")
    # A day just before clocks went back: three of its days are 73 hours long.
    (site_copy / "content" / "events" / "2019-10-24-herbsttag.md").write_text(
        '---\ntitle: "Herbsttag"\nstart: 2019-10-24\nregion: landesweit\norganiser: "B"\n'
        'online: "https://example.org/x"\nstatus: planned\nsummary: "S"\n'
        "published: 2019-10-01\n---\nText.\n",
        "utf-8",
    )
    config = load_config(toml, environ={})
    site, problems = read_site(config)
    assert not problems
    state = FileState(config.root)
    # A first sight on the night clocks went forward, a change on the night they went back.
    state.save_feed_rows(
        {
            "event/a": ("x", 0, datetime(2020, 3, 29, 0, 30, tzinfo=UTC), None),
            "event/b": (
                "y",
                1,
                datetime(2019, 1, 1, tzinfo=UTC),
                datetime(2019, 10, 27, 1, 30, tzinfo=UTC),
            ),
        }
    )
    tz = config.tz
    items = [*site.all_items(), *(i for own in site.translations.values() for i in own.values())]
    instants = _named(items, tz)
    for _, _, seen, changed in state.feed_rows().values():
        instants += [seen] if changed is None else [seen, changed]
    shifts = {timedelta(days=d) for d in {0, *_days(config.settings)}}
    start = datetime(2019, 3, 28, tzinfo=UTC)
    nows = [start + timedelta(hours=hours) for hours in range(0, 24 * 800, 71)]
    # Just before and after each moment the autumn event names (and near its own day).
    autumn = [i for i in instants if date(2019, 10, 20) <= i.date() <= date(2019, 10, 28)]
    near = [i + shift * sign for i in autumn for shift in shifts for sign in (1, -1)]
    nows += [m + timedelta(minutes=step) for m in near for step in (-90, -30, 30)]
    for now in nows:
        with time_machine.travel(now, tick=False):
            moments = [
                moment
                for instant in instants
                for shift in shifts
                for moment in (instant + shift, instant - shift)
                if moment > config.now()
            ]
            local = config.now().astimezone(tz)
            tomorrow = datetime.combine(local.date() + timedelta(days=1), time(), tz)
            expected = min([config.now() + build_record.LONGEST, tomorrow, *moments])
            assert build_record.until(config, site, state) == expected, now


def test_the_code_digest_is_kept_under_the_packages_settled_stamps_only(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    kept = site_copy / build_record.CODE_FILE
    monkeypatch.setattr(build_record, "_settled_code", None)
    build_record.code_digest.cache_clear()
    real = build_record.code_digest()  # read from the files: nothing stamped

    def digest_after_stamps() -> bytes:
        build_record.code_digest.cache_clear()
        assert build_record.take_stamps(config, config.output_dir) is not None
        return build_record.code_digest()

    assert not kept.exists()
    assert digest_after_stamps() == real
    settled = build_record._settled_code
    if settled is None:
        pytest.skip("the package's files changed within SETTLE: nothing is kept")
    assert settled[0] == kept and kept.exists()
    # What a later process takes while the package's stamps hold …
    write_checked(kept, 1, [settled[1], b"kept"])
    assert digest_after_stamps() == b"kept"
    # … but a package stamped otherwise (a file changed) is read again and kept anew.
    write_checked(kept, 1, ["other stamps", b"kept"])
    assert digest_after_stamps() == real
    assert read_checked(kept, 1) == [settled[1], real]
    build_record._settle_code(None)  # racy stamps: nothing is trusted
    build_record.code_digest.cache_clear()
    assert build_record.code_digest() == real
    build_record.code_digest.cache_clear()
