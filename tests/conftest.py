"""Shared fixtures: paths to the repository's sample content and the bad-content cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_content"


def copy_sample(folder: Path) -> Path:
    """Copy the sample site (comms.toml, content/, static/) into `folder`; returns `folder`.

    A build writes var/feeds-state.json beside comms.toml: tests that build the sample site
    build a copy, so that the repository stays clean and parallel workers share no file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "comms.toml", folder / "comms.toml")
    shutil.copytree(ROOT / "content", folder / "content")
    shutil.copytree(ROOT / "static", folder / "static")
    return folder


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A throwaway copy of the sample site (comms.toml, content/, static/); returns its folder."""
    return copy_sample(tmp_path)


GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--update-golden` rewrites the golden files instead of comparing against them."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current output (review the diff before committing)",
    )


class Golden:
    """Compares rendered output with a file under tests/golden/, or rewrites it."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, actual: str) -> None:
        """Assert that `actual` equals tests/golden/<name> (or write it with --update-golden)."""
        path = GOLDEN / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual.encode("utf-8"))
            return
        assert path.is_file(), f"no golden file {name}: run pytest --update-golden"
        expected = path.read_bytes().decode("utf-8")
        assert actual == expected, f"{name} differs from the golden file (--update-golden)"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """The golden-file checker, honouring --update-golden."""
    return Golden(bool(request.config.getoption("--update-golden")))


@pytest.fixture(autouse=True)
def _no_four_eyes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample comms.toml turns `delivery.require_approval` on; the tests of sending
    mechanics run without it. tests/test_desk.py turns it back on where approval is the point
    (COMMS_DELIVERY_REQUIRE_APPROVAL=true in the command's environment)."""
    monkeypatch.setenv("COMMS_DELIVERY_REQUIRE_APPROVAL", "false")
