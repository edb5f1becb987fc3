"""Helpers for the scheduler tests: a sample site with subscribers, a clock, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from comms.core.config import Config, load_config
from comms.db.store import Store, open_store

from .ledgerkit import run_cli

BERLIN = ZoneInfo("Europe/Berlin")
ISSUE = "2020-02-newsletter"
SECRET = "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
PEOPLE = "email,name\nanna@example.org,Anna\nbernd@example.org,Bernd\ncarla@example.org,Carla\n"


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A local time in Europe/Berlin."""
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def with_subscribers(root: Path) -> None:
    """Import three confirmed subscribers into the site's database."""
    (root / "people.csv").write_text(PEOPLE, encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "Testliste",
    )  # fmt: skip
    assert code == 0, err


def open_site(root: Path) -> tuple[Config, Store]:
    """The site's config and store, as `comms serve` opens them."""
    config = load_config(root / "comms.toml")
    return config, open_store(config)


def set_front_matter(path: Path, key: str, value: str | None) -> None:
    """Replace (or with None remove) one front matter line of a content file."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = [line for line in lines if not line.startswith(f"{key}:")]
    if value is not None:
        out.insert(1, f"{key}: {value}\n")
    path.write_text("".join(out), encoding="utf-8")


def outbox(root: Path, slug: str = ISSUE) -> list[Path]:
    """The messages the file transport wrote for an issue."""
    return sorted((root / "var" / "outbox" / slug).glob("*.eml"))


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until `check()` is true (jobs run in the scheduler's threads)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
