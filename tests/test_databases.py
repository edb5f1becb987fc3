"""The database fixture keeps its promise: marked tests run on both databases, an unmarked test
that opens one fails, and a `[postgresql]` run really uses PostgreSQL (tests/databases.py)."""

from __future__ import annotations

import pytest

from .conftest import ROOT

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # each runs pytest in a subprocess

CONFTEST = """
from tests.conftest import database, pg_server, pg_url, pytest_generate_tests
"""

TESTS = """
import pytest
import sqlalchemy as sa
from tests.ledgerkit import make_store

def test_unmarked_but_opens_the_database(tmp_path):
    make_store(tmp_path, 1)

@pytest.mark.database
def test_marked(tmp_path):
    store = make_store(tmp_path, 1)
    print("dialect", store.engine.dialect.name)

@pytest.mark.database
def test_opens_an_sqlite_file_behind_the_fixture_s_back(tmp_path):
    with sa.create_engine(f"sqlite:///{tmp_path}/side.db").connect():
        pass
"""


@pytest.fixture
def guarded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest project of three tests that use the suite's database fixture."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_guarded=TESTS)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # A subprocess: the fixture's state is per process, and this test runs inside one.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", *args)


def test_the_guards_on_sqlite(guarded: pytest.Pytester) -> None:
    result = _run(guarded, "-m", "not slow", "-s")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_but_opens_the_database opened the database */var/comms.db: mark it "
            "`@pytest.mark.database` so that it runs on SQLite and PostgreSQL",
        ]
    )
    assert "dialect sqlite" in result.stdout.str()


def test_a_module_fixture_that_opens_a_database_fails(guarded: pytest.Pytester) -> None:
    """Such a fixture is set up before any test's backend: it cannot follow it."""
    guarded.makepyfile(
        test_guarded=(
            "import pytest\n"
            "from tests.ledgerkit import make_store\n"
            "@pytest.fixture(scope='module')\n"
            "def store(tmp_path_factory):\n"
            "    return make_store(tmp_path_factory.mktemp('m'), 1)\n"
            "def test_x(store):\n"
            "    pass\n"
        )
    )
    result = _run(guarded)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*a module- or session-scoped fixture opened the database */comms.db: such a fixture*"]
    )


def test_a_test_for_one_database_must_say_why(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_guarded="import pytest\n@pytest.mark.sqlite_only\ndef test_x():\n    pass\n"
    )
    result = _run(guarded)
    result.stdout.fnmatch_lines(["*sqlite_only needs a reason: say why*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_the_guards_on_postgresql(guarded: pytest.Pytester) -> None:
    result = _run(guarded, "-s", "-k", "postgresql")
    result.assert_outcomes(passed=2, errors=1)
    assert "dialect postgresql" in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*the [[]postgresql[]] run opened an SQLite file anyway: */side.db"]
    )
