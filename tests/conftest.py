"""Shared fixtures: paths to the repository's sample content and the bad-content cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_content"


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A throwaway copy of the bundled sample site (comms.toml + content/); returns its folder."""
    shutil.copy(ROOT / "comms.toml", tmp_path / "comms.toml")
    shutil.copytree(ROOT / "content", tmp_path / "content")
    return tmp_path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="Rewrite golden files instead of comparing."
    )
