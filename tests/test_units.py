"""The systemd units in docs/operations.md, as an operator copies them, pass
`systemd-analyze verify` (systemd's own parser: unknown keys, bad values, missing units)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
#: A fenced `ini` block whose first line names the unit file: `# /etc/systemd/system/NAME`.
UNIT = re.compile(
    r"^( *)```ini\n\1# /etc/systemd/system/(\S+)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL
)
#: Where the docs install comms; the test points the units at this environment's comms.
INSTALLED = "/opt/comms/.venv/bin/comms"


def documented_units() -> dict[str, str]:
    """Unit file name → its text, for every unit the operations page shows."""
    text = OPERATIONS.read_text(encoding="utf-8")
    return {m[2]: textwrap.dedent(m[3]) for m in UNIT.finditer(text)}


def test_the_page_shows_every_unit_an_operator_needs() -> None:
    units = documented_units()
    assert sorted(units) == [
        "comms-build.service",
        "comms-build.timer",
        "comms-worker.service",
        "comms.service",
    ]
    for name, text in units.items():
        # var/ exists only with SQLite, a generated key or a file outbox: a unit that needs it
        # fails to start (226/NAMESPACE) on a PostgreSQL host.
        for line in re.findall(r"^ReadWritePaths=(.*)$", text, re.MULTILINE):
            paths = line.split()
            assert all(not p.endswith("/var") or p.startswith("-") for p in paths), name


@pytest.mark.slow
def test_systemd_analyze_verifies_the_documented_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (Debian package `systemd`; .ci/run installs it)")
    comms = Path(sys.executable).with_name("comms")
    names = []
    for name, text in documented_units().items():
        (tmp_path / name).write_text(text.replace(INSTALLED, str(comms)), encoding="utf-8")
        names.append(str(tmp_path / name))
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names], capture_output=True, text=True, check=False
    )
    # verify exits 0 on many problems (an unknown key is "ignoring"): any word from it is one.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
