"""Start-up: `comms --version`, `--help` and `check` import only what they need.

Asserted by the modules a real `comms` process has loaded when it exits, never by a time.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .databases import database_env
from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, with_subscribers
from .smtp_servers import Handler, smtp_server

#: Prints every loaded module's name as the process exits (after `main`'s sys.exit).
_PROBE = """
import atexit, sys
atexit.register(lambda: print("MODULES", *sorted(sys.modules), file=sys.__stderr__))
from comms.cli import main
main(sys.argv[1:])
"""

#: What no editing command needs: the database layer, serving, sending, reports, desk secrets,
#: drawing logos.
NOT_FOR_EDITING = (
    "alembic",
    "apscheduler",
    "argon2",
    "cairocffi",
    "cairosvg",
    "comms.db.store",
    "comms.sending.campaign",
    "comms.web.app",
    "flask",
    "pygal",
    "requests",
    "rich",
)


def _loaded(*args: str, cwd: Path) -> set[str]:
    """The modules `comms ARGS` has loaded when it exits (its exit code 0)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


def test_version_loads_no_command(tmp_path: Path) -> None:
    loaded = _loaded("--version", cwd=tmp_path)
    assert not {"sqlalchemy", "pydantic", "jinja2", "comms.core.config"} & loaded
    assert not {name for name in loaded if name.startswith("comms.cli.")} - {"comms.cli.common"}


def test_help_lists_every_command_without_loading_what_they_run(tmp_path: Path) -> None:
    loaded = _loaded("--help", cwd=tmp_path)
    assert "comms.cli.sending" in loaded  # every command's help text is there
    assert not {*NOT_FOR_EDITING, "sqlalchemy", "comms.core.credentials"} & loaded


def test_check_loads_only_what_checking_needs(site_copy: Path) -> None:
    loaded = _loaded("check", cwd=site_copy)
    assert "comms.publish.gate" in loaded
    assert not set(NOT_FOR_EDITING) & loaded
    commands = {name for name in loaded if name.startswith("comms.cli.")}
    assert commands == {"comms.cli.common", "comms.cli.checking"}


#: Prints, after every other exit function, how many objects the collector leaves alone.
_FROZEN = """
import atexit, gc, sys
atexit.register(lambda: print("FROZEN", gc.get_freeze_count(), file=sys.__stderr__))
from comms.cli import main
main(sys.argv[1:])
"""


def test_a_command_leaves_its_objects_to_the_process_exit() -> None:
    """Python's collection at exit would walk every object a build left (0.3-0.5 s after a
    large one): a `comms` process freezes them first (exit functions run last-in, first-out,
    so the probe registered before importing comms runs after comms's)."""
    done = subprocess.run(
        [sys.executable, "-c", _FROZEN, "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    frozen = [line for line in done.stderr.splitlines() if line.startswith("FROZEN")]
    assert frozen and int(frozen[0].split()[1]) > 1000


@pytest.mark.slow
def test_a_build_that_tells_no_hub_loads_no_http_client(site_copy: Path) -> None:
    loaded = _loaded("build", cwd=site_copy)
    assert "comms.publish.refresh" in loaded
    assert "requests" not in loaded


#: Libraries loaded only where a build uses them: calendars' bytes, RSS and Atom bytes, an
#: address's check.
ON_USE = ("email_validator", "feedgen", "icalendar", "lxml")


def test_the_build_and_the_settings_load_no_library_before_it_is_used(tmp_path: Path) -> None:
    probe = (
        "import sys, comms.publish.build, comms.publish.refresh, comms.core.config; "
        "print(*sorted(sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert "comms.publish.calendars" in loaded and "comms.publish.feeds" in loaded
    assert not {name.split(".")[0] for name in loaded} & set(ON_USE)


@pytest.mark.slow
def test_a_build_after_one_edit_that_changes_no_calendar_loads_no_icalendar(
    site_copy: Path,
) -> None:
    assert {"icalendar", "email_validator"} <= _loaded("build", cwd=site_copy)
    # An award without an address; the settings were validated by the build before.
    award = site_copy / "content" / "awards" / "sonderpreis-2018.md"
    award.write_text(award.read_text(encoding="utf-8").replace("title: ", "title: Neu ", 1))
    loaded = _loaded("build", cwd=site_copy)
    assert "comms.publish.build" in loaded  # built, not skipped
    assert not {"icalendar", "email_validator"} & loaded


@pytest.mark.slow
@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_a_send_to_no_terminal_loads_no_bar_no_http_client_and_no_other_database(
    site_copy: Path,
) -> None:
    """What `comms send` pays before its first message: a send over SMTP into a pipe (cron,
    the scheduler's log) draws no bar, tells no hub (none is configured) and loads no other
    database's dialect."""
    with_subscribers(site_copy)
    env = database_env(site_copy / "comms.toml")
    other = "sqlalchemy.dialects." + ("sqlite" if env else "postgresql")
    handler = Handler()
    with smtp_server(handler) as port:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, "--config", str(site_copy / "comms.toml"), "send",
             ISSUE, "--now", "--yes", "--transport", f"smtp://127.0.0.1:{port}"],
            cwd=site_copy, env=os.environ | {"COMMS_SECRET_KEY": SECRET} | env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(handler.received) == 3
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    loaded = set(line.split()[1:])
    assert {"comms.sending.run", "comms.mail.smtp", "comms.publish.refresh"} <= loaded
    assert not {"rich", "requests", other} & loaded


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_a_send_holds_the_collector_back_from_start_to_end(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the first message the collector walked the modules and the site again and
    again: `comms send` runs as one batch (comms.core.collector), its run included."""
    from comms.core.collector import BATCH_THRESHOLDS
    from comms.sending.run import Run

    with_subscribers(site_copy)
    seen: list[int] = []
    execute = Run.execute

    def watched(run: Run) -> dict[str, int]:
        seen.append(gc.get_threshold()[0])
        return execute(run)

    monkeypatch.setattr(Run, "execute", watched)
    handler = Handler()
    with smtp_server(handler) as port:
        code, _, err = run_cli(
            site_copy, "send", ISSUE, "--now", "--yes", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 0, err
    assert seen == [BATCH_THRESHOLDS[0]]
    assert gc.get_threshold()[0] < BATCH_THRESHOLDS[0]  # and no longer after it
