"""Shared fixtures: the sample content, the bad-content cases, a throwaway PostgreSQL cluster."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .databases import Databases, database, parametrize
from .deskkit import browser
from .smtp_servers import free_port

# The autouse fixture of tests/databases.py; Chromium for the desk's browser tests.
__all__ = ["browser", "database"]

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `database` run on SQLite and PostgreSQL (tests/databases.py)."""
    parametrize(metafunc)


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


@pytest.fixture
def without_approval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send without the editor's approval, which the sample comms.toml requires
    (`delivery.require_approval`): for tests of sending mechanics on the sample site, not of
    the desk. The environment reaches `comms` child processes too."""
    monkeypatch.setenv("COMMS_DELIVERY_REQUIRE_APPROVAL", "false")


# -- a throwaway PostgreSQL cluster (tests marked slow; skipped without Debian's binaries) --


def _binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary folder; yields a server URL without a database."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL TESTS SKIPPED: no initdb/pg_ctl (Debian package postgresql)")
    # initdb refuses to run as root; Debian's package brings the `postgres` user.
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="comms-pg-"))
    data = folder / "data"
    if run_as:
        shutil.chown(folder, "postgres")
    port = free_port()
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
         "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    subprocess.run(
        [*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
         "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(database: Databases) -> str:
    """A fresh, empty PostgreSQL database for a test marked `postgresql_only` (dropped after)."""
    assert database.postgresql, "pg_url is for tests marked postgresql_only"
    return database.fresh()
