"""`comms check` prints the last check's report again while nothing it reads changed, without
reading the site; any change (content, configuration file, --strict, the time) checks again:
real files, the real command line."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

import comms.content.site
from comms.cli import main

from .conftest import copy_sample

#: An hour back: older than comms.core.files.SETTLE, so the stamps of what a test wrote count.
AGE = 3600


class Checks:
    """Runs `comms check` on a site copy; tells whether it read the site."""

    def __init__(
        self, site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.site = site
        self.capsys = capsys
        self.reads = 0
        real = comms.content.site.read_site

        def counting(*args: object, **kwargs: object) -> object:
            self.reads += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(comms.content.site, "read_site", counting)

    def run(self, *options: str) -> tuple[int, str, str, bool]:
        """Exit code, stdout, stderr and whether it read the site."""
        before = self.reads
        code = 0
        try:
            main(["--config", str(self.site / "comms.toml"), "check", *options])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err, self.reads > before

    def age(self) -> None:
        """Move every input's mtime an hour back, as if edited long ago."""
        for path in [self.site / "comms.toml", *self.site.rglob("*")]:
            if path.is_file() and "var" not in path.relative_to(self.site).parts:
                mtime = path.stat().st_mtime - AGE
                os.utime(path, (mtime, mtime))


@pytest.fixture
def checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Checks:
    """A sample site copy, its inputs aged."""
    made = Checks(copy_sample(tmp_path / "site"), monkeypatch, capsys)
    made.age()
    return made


@pytest.mark.slow
def test_an_unchanged_check_prints_the_same_report_without_reading(checks: Checks) -> None:
    code, out, err, read = checks.run()
    assert (code, read) == (0, True) and "0 error(s)" in err
    assert checks.run() == (code, out, err, False)


@pytest.mark.slow
def test_errors_are_reported_again_and_a_fix_checks_again(checks: Checks) -> None:
    event = next((checks.site / "content" / "events").glob("2019-05-07-*.md"))
    good = event.read_text("utf-8")
    event.write_text(good.replace("start:", "start: kein Datum\nalt_start:", 1), "utf-8")
    checks.age()
    code, out, err, read = checks.run()
    assert code == 1 and read and event.name in out
    assert checks.run() == (code, out, err, False)
    event.write_text(good, "utf-8")
    code, _, _, read = checks.run()
    assert (code, read) == (0, True)


@pytest.mark.slow
def test_strict_a_changed_configuration_file_and_the_time_check_again(checks: Checks) -> None:
    stray = checks.site / "content" / "notizen.md"
    stray.write_text("Nur eine Notiz.\n", "utf-8")
    checks.age()
    code, out, _, read = checks.run()
    assert (code, read) == (0, True) and "notizen.md" in out
    assert checks.run()[3] is False
    code, _, _, read = checks.run("--strict")
    assert (code, read) == (1, True), "a warning is an error with --strict"
    assert checks.run("--strict")[:1] == (1,)

    # A comment moves the lines the check reports in comms.toml: checked again.
    toml = checks.site / "comms.toml"
    toml.write_text("# Kommentar\n" + toml.read_text("utf-8"), "utf-8")
    assert checks.run()[3] is True

    lines = toml.read_text("utf-8").splitlines(keepends=True)
    toml.write_text("".join(line for line in lines if "reference_date" not in line), "utf-8")
    checks.age()
    with time_machine.travel(datetime(2020, 3, 25, 11, 0, tzinfo=UTC), tick=False):
        assert checks.run()[3] is True
        assert checks.run()[3] is False
    # The sample's workshop of 2020-03-25 ends at 13:30 in Berlin: an instant the check's
    # build (which pages exist) may depend on.
    with time_machine.travel(datetime(2020, 3, 25, 12, 31, tzinfo=UTC), tick=False):
        assert checks.run()[3] is True


@pytest.mark.slow
def test_a_check_neither_asks_nor_waits_for_a_database_server(
    checks: Checks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`comms check` reads no publishing state: its kept report needs no query to a server
    (which would cost the import of psycopg, and the connect timeout where it is away)."""
    from comms.publish import build_record

    def refuse(url: str) -> str:
        raise AssertionError(f"comms check asked the database server at {url}")

    monkeypatch.setattr(build_record, "server_stamp", refuse)
    monkeypatch.setenv("COMMS_DATABASE_URL", "postgresql+psycopg://comms@127.0.0.1:1/comms")
    code, out, err, read = checks.run()
    assert (code, read) == (0, True) and "0 error(s)" in err
    assert checks.run() == (code, out, err, False)
