"""Benchmark: what the gate costs — `comms check` and `issue_problems` against reading alone.

Run: .venv/bin/python bench/check.py [--events N --practices N --issues N]
Prints each measurement as a ratio to reading the content (read_site) in the same run:
check = read + site_problems (e-mail checks of every issue, links and images of every file);
its link check lists the build's paths without making a body (against the whole build);
issue_problems = the gate for one issue (its links, what it shows, its e-mail checks).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.render import sites
from bench.timing import median_seconds
from comms.content.markup import markdown_unsanitised
from comms.content.models import Site
from comms.content.site import read_site
from comms.core.config import Config, load_config
from comms.publish.build import collect
from comms.publish.gate import issue_problems, site_problems
from comms.publish.link_check import LinkChecker
from comms.publish.producer import Build
from comms.publish.quality import check_issues
from comms.publish.state import ScratchState

ROOT = Path(__file__).resolve().parent.parent


def _every_body(config: Config, site: Site) -> None:
    files = collect(Build(config, site, ScratchState()))
    for path in files:
        files[path]


def measure(folder: Path, label: str, repeat: int) -> None:
    """Print read, check, link checks and one issue's gate, as ratios to read."""
    config = load_config(folder / "comms.toml")
    site, errors = read_site(config)
    slug = sorted(site.issues)[-1]
    # Cold, as in a fresh `comms check` process: no body converted yet.
    cold = markdown_unsanitised.cache_clear
    read = median_seconds(lambda: read_site(config), repeat, before=cold)
    before = median_seconds(lambda: check_issues(config, read_site(config)[0]), repeat, before=cold)
    check = median_seconds(lambda: site_problems(config, read_site(config)[0]), repeat, before=cold)
    links = median_seconds(lambda: LinkChecker(config, site), repeat, before=cold)
    whole = median_seconds(lambda: _every_body(config, site), repeat, before=cold)
    gate = median_seconds(lambda: issue_problems(config, site, errors, slug), repeat, before=cold)
    rows = [
        ("read_site", read),
        ("check before the gate (read + quality.check_issues)", before),
        ("check now (read + gate.site_problems)", check),
        ("  LinkChecker set-up (the build's paths, no body made)", links),
        ("  the build with every body made (as publish_now)", whole),
        (f"issue_problems({slug})", gate),
    ]
    print(f"{label} (read_site = {read * 1000:.0f} ms):")
    for name, seconds in rows:
        print(f"  {name:55s} {seconds / read:5.2f} x read_site")


def main() -> None:
    """Measure on the sample site and on a synthetic one."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--practices", type=int, default=100)
    parser.add_argument("--issues", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        for folder, label in sites(Path(tmp), args.events, args.practices, args.issues):
            measure(folder, label, 3 if label == "Sample site" else 1)


if __name__ == "__main__":
    main()
