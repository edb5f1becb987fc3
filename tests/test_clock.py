"""The one clock: the current instant, and "now" for the content, which `reference_date` moves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine

from comms.core.clock import epoch, now_utc
from comms.core.config import load_config

BERLIN = ZoneInfo("Europe/Berlin")
INSTANT = datetime(2026, 7, 1, 10, 30, tzinfo=UTC)


def test_the_content_sees_the_reference_date_and_records_the_instant(tmp_path: Path) -> None:
    path = tmp_path / "comms.toml"
    path.write_text("reference_date = 2020-01-15\n", encoding="utf-8")
    config = load_config(path, environ={})
    with time_machine.travel(INSTANT, tick=False):
        assert config.now() == datetime(2020, 1, 15, tzinfo=BERLIN)
        assert config.now().tzinfo == BERLIN
        # What is recorded, leases and send times: the instant, never the reference date.
        assert now_utc() == INSTANT and now_utc().tzinfo is UTC
        assert epoch() == INSTANT.timestamp()


def test_without_a_reference_date_the_content_sees_the_instant(tmp_path: Path) -> None:
    path = tmp_path / "comms.toml"
    path.write_text("", encoding="utf-8")
    config = load_config(path, environ={})
    assert config.settings.reference_date is None
    with time_machine.travel(INSTANT, tick=False):
        assert config.now() == INSTANT
        assert config.now().tzinfo == BERLIN
        assert config.now().hour == 12  # CEST
