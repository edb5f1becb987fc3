"""Profile a cold `comms build` of the Pelican comparison's site (the sample + 2,600 items).

Run: .venv/bin/python bench/profile_build.py [--site /tmp/comms-profile-site] [--top 40]
                                             [--events 1300 --practices 1300]

Makes the site once (kept in --site for the next run), removes its output folder and cache,
runs `comms build` under cProfile in this process and prints the functions with the most
cumulative and own time, the file count and the wall-clock time of the profiled run (cProfile
slows Python code down about twofold: compare shares, not seconds, with the unprofiled bench).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pelican_compare import comms_site
from comms.cli import main as comms_main


def main() -> None:
    """Profile one cold build and print the largest costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("/tmp/comms-profile-site"))
    parser.add_argument("--events", type=int, default=1300)
    parser.add_argument("--practices", type=int, default=1300)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--output", type=Path, help="also write the raw profile here")
    args = parser.parse_args()
    site: Path = args.site
    if not (site / "comms.toml").is_file():
        comms_site(site, args.events, args.practices)
    shutil.rmtree(site / "public", ignore_errors=True)
    shutil.rmtree(site / "var" / "cache", ignore_errors=True)
    os.chdir(site)
    profile = cProfile.Profile()
    began = time.perf_counter()
    try:
        profile.runcall(comms_main, ["build"])
    finally:
        elapsed = time.perf_counter() - began
    files = sum(1 for path in (site / "public").rglob("*") if path.is_file())
    print(f"profiled cold build: {elapsed:.1f} s, {files} files")
    if args.output is not None:
        profile.dump_stats(args.output)
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
