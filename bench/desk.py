"""Benchmark: what the desk adds before the first mail of a send, as ratios to one render.

The gate (`issue_problems`), the approval digest and the archive refresh (`publish_now`,
an up-to-date output folder) against `render_issue` of the same issue, in the same run.

Run: .venv/bin/python bench/desk.py [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import median_seconds
from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.gate import issue_problems
from comms.publish.refresh import publish_now
from comms.publish.render import render_issue
from comms.publish.state import FileState
from comms.sending.approval import approval_digest

ROOT = Path(__file__).resolve().parent.parent
ISSUE = "2020-02-newsletter"


class SentState(FileState):
    """The feed history in files, with the issue sent (as the ledger says after its send)."""

    def sent_issues(self) -> frozenset[str]:
        """The issue."""
        return frozenset({ISSUE})


def main() -> None:
    """Print the median time of each step and its ratio to one render."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copy(ROOT / "comms.toml", root / "comms.toml")
        for name in ("content", "static"):
            shutil.copytree(ROOT / name, root / name)
        config = load_config(root / "comms.toml", environ={})
        site, errors = read_site(config)
        issue = site.issues[ISSUE]
        rendered = render_issue(config, site, issue)
        state = SentState(root)
        publish_now(config, state, tell_hubs=True)  # the first build; later ones compare bytes
        steps = {
            "render_issue (baseline)": lambda: render_issue(config, site, issue),
            "gate: issue_problems": lambda: issue_problems(config, site, errors, ISSUE),
            "approval digest": lambda: approval_digest({rendered.language: rendered}, issue),
            "archive refresh": lambda: publish_now(config, state, tell_hubs=True),
        }
        times = {name: median_seconds(work, rounds) for name, work in steps.items()}
    base = times["render_issue (baseline)"]
    for name, seconds in times.items():
        print(f"{name:<26} {seconds * 1000:8.1f} ms  {seconds / base:6.2f} × render")


if __name__ == "__main__":
    main()
