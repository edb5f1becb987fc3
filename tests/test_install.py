"""The package as an operator installs it: sdist, wheel from the sdist, `pip install` (not
editable) into a fresh virtual environment, then `comms demo` on a copy of the sample site."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import ROOT, copy_sample


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure show what it printed (pip and build say why)."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_environment_runs_the_demo(tmp_path: Path) -> None:
    # Build from a copy of what a release holds, so that nothing is written into the checkout
    # (setuptools writes build/ and *.egg-info beside pyproject.toml).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "comms", source / "comms", ignore=shutil.ignore_patterns("__pycache__"))
    # The wheel is made from the sdist, as `python -m build` does for a release: a file
    # missing from either is missing here too.
    _run([sys.executable, "-m", "build", "--outdir", tmp_path / "dist", source], tmp_path)
    wheel = next((tmp_path / "dist").glob("comms-*.whl"))
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    # This interpreter's pip installs into the fresh one; the dependencies come from the
    # package index pip is configured with (or its cache).
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel], tmp_path)

    site = copy_sample(tmp_path / "site")
    shutil.copytree(ROOT / "samples", site / "samples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")}
    env.pop("PYTHONPATH", None)
    where = _run([python, "-c", "import comms.publish.templating as t; print(t.TEMPLATES)"], site)
    assert Path(where.strip()).is_relative_to(fresh), "comms was not imported from the wheel"
    out = _run([fresh / "bin" / "comms", "demo"], site, env)

    assert "Traceback" not in out
    assert f"Output: {site / 'public'} (" in out
    assert "  5 sent, 0 failed, 0 skipped, 0 waiting" in out
    # German from the shipped catalogs (compiled in memory from the wheel's .po files).
    assert "Veranstaltungen" in out
    issue = site / "public" / "issues" / "2020-02-newsletter"
    assert "Newsletter abbestellen:" in (issue / "email.txt").read_text(encoding="utf-8")
    assert (site / "public" / "style.css").is_file()
    assert len(list((site / "var" / "outbox").rglob("*.eml"))) == 5
    # The archetypes ship too: `comms new` makes a file from one.
    out = _run(
        [fresh / "bin" / "comms", "new", "event", "Probe", "--date", "2020-03-01"], site, env
    )
    assert "created content/events/2020-03-01-probe.md" in out
    assert "[[" in (site / "content" / "events" / "2020-03-01-probe.md").read_text("utf-8")
