"""A build that would write the same bytes is skipped; any input, the time or the folder
changing makes it build again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from comms.core.config import load_config
from comms.publish import build
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
