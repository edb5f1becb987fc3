"""Benchmark: what the gate costs — `comms check` and `issue_problems` against reading alone,
and the `comms` commands an editor runs, as whole processes.

Run: .venv/bin/python bench/check.py [--events N --practices N --issues N --rounds N]
          [--against DIR] [--bytecode] [--processes-only]
First the processes on a copy of the sample: `comms check` (cold: no var/cache; unchanged;
one event edited), `comms --help` and `comms --version`, each the median wall time and CPU time
(user + system) of --rounds runs, interleaved, and as a ratio to `python -c pass` measured in
the same rounds (the machine's start-up cost now: other load slows both alike). With
--against DIR (another source tree of comms, e.g. `git archive 191325d | tar -x -C DIR`) each
command also runs from there, interleaved, with the ratio of this tree's CPU time to that one's.
Python compiles comms's modules again in every process while PYTHONDONTWRITEBYTECODE is set;
--bytecode lets the processes keep their bytecode, as an installed copy does.
Then each in-process measurement as a ratio to reading the content (read_site) in the same run:
check = read + site_problems (e-mail checks of every issue, links and images of every file);
its link check lists the build's paths without making a body (against the whole build);
issue_problems = the gate for one issue (its links, what it shows, its e-mail checks).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def _run(argv: list[str], env: dict[str, str], tree: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one process run in the source tree `tree` (its
    comms comes first on the path); it must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    quiet = subprocess.DEVNULL
    subprocess.run(argv, check=True, stdout=quiet, stderr=quiet, env=env, cwd=tree)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def _edit(event: Path) -> Callable[[], None]:
    """A change of one event's body (a different byte each time), as an editor's save."""
    original = event.read_text(encoding="utf-8")
    count = [0]

    def edit() -> None:
        count[0] += 1
        event.write_text(original + f"\nÄnderung {count[0]}.\n", encoding="utf-8")

    return edit


def comms_of(site: Path) -> list[str]:
    """The command line of `comms` on the site in `site`."""
    return [sys.executable, "-m", "comms", "--config", str(site / "comms.toml")]


def measure_processes(
    folder: Path, rounds: int, against: Path | None = None, bytecode: bool = False
) -> None:
    """Print `comms check` (cold, unchanged, one event edited), `--help` and `--version` as
    processes: median wall and CPU seconds, the ratio to `python -c pass` and, with
    `against`, the ratio of this tree's CPU time to that tree's."""
    # Each tree checks its own copy of the site: with one shared var/ each would find the
    # other's code digest in the caches, and "nothing changed" would be a cold check for both.
    sites = {"": (ROOT, folder)}
    if against is not None:
        copy = folder.with_name(folder.name + "-against")
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("var", "public"))
        sites[" [against]"] = (against, copy)
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples: dict[str, list[tuple[float, float]]] = {}

    def run(name: str, argv: list[str], tree: Path) -> None:
        sample = _run(argv, env, tree)
        samples.setdefault(name, []).append(sample)

    def cases(site: Path) -> list[tuple[str, list[str], Callable[[], None] | None]]:
        cache = site / "var" / "cache"
        edit = _edit(sorted((site / "content" / "events").glob("*.md"))[0])
        return [
            ("comms --version", ["--version"], None),
            ("comms --help", ["--help"], None),
            ("comms check (cold: no var/cache)", ["check"], lambda: shutil.rmtree(cache, True)),
            ("comms check (nothing changed)", ["check"], None),
            ("comms check (one event edited)", ["check"], edit),
        ]

    commands = {label: comms_of(site) for label, (_, site) in sites.items()}
    steps = {label: cases(site) for label, (_, site) in sites.items()}
    for label, (tree, _) in sites.items():
        _run([*commands[label], "check"], env, tree)  # disk caches warm
    for _ in range(rounds):
        run("python -c pass", [sys.executable, "-c", "pass"], ROOT)
        for index in range(len(steps[""])):
            for label, (tree, _) in sites.items():
                name, argv, before = steps[label][index]
                if before is not None:
                    before()
                run(name + label, [*commands[label], *argv], tree)

    def median(name: str, index: int) -> float:
        return statistics.median(sample[index] for sample in samples[name])

    base = median("python -c pass", 0)
    print(
        f"Processes on the sample site (median of {rounds}; python -c pass = {base:.3f} s; "
        f"bytecode {'kept' if bytecode or 'PYTHONDONTWRITEBYTECODE' not in env else 'not kept'}):"
    )
    for name in samples:
        wall, cpu = median(name, 0), median(name, 1)
        line = f"  {name:45s} {wall:6.3f} s wall {cpu:6.3f} s CPU {wall / base:6.1f} x python"
        if name + " [against]" in samples:
            line += f"  CPU {cpu / median(name + ' [against]', 1):4.2f} x against"
        print(line)


def main() -> None:
    """Measure the processes on the sample, then in-process on the sample and a synthetic site."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--practices", type=int, default=100)
    parser.add_argument("--issues", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="Runs of each process.")
    parser.add_argument("--processes-only", action="store_true", help="Skip the in-process part.")
    parser.add_argument("--against", type=Path, help="Another source tree of comms to compare.")
    parser.add_argument("--bytecode", action="store_true", help="Let the processes keep bytecode.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        for folder, label in sites(Path(tmp), args.events, args.practices, args.issues):
            if label == "Sample site":
                measure_processes(folder, args.rounds, args.against, args.bytecode)
            if args.processes_only:
                break
            measure(folder, label, 3 if label == "Sample site" else 1)


if __name__ == "__main__":
    main()
