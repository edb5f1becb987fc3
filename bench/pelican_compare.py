"""Benchmark: `comms build` of the sample plus 2,600 generated items against Pelican.

Run: .venv/bin/python bench/pelican_compare.py [--events 1300 --practices 1300 --rounds 3]
                                               [--pelican-venv /tmp/pelican-venv] [--no-pelican]
                                               [--database none|sqlite|postgresql]

All in one run, each command timed whole as a user runs it (wall clock, median of --rounds;
beside it the CPU seconds the command and its workers used, which a busy machine disturbs
less):
1. comms: a cold build (no output folder, no var/cache, no feed history: in var/ or in the
   database) as configured by default (`render.workers = 0`: one process per core, at most
   4) and in one process (`COMMS_RENDER_WORKERS=1`), a rebuild with nothing changed (the
   whole-build record skips it; the bench waits out the two seconds in which the cold
   build's writes are too recent to stamp, lets an untimed build record the stamps, and
   stops if the timed one read the content all the same), the same with the record removed
   (only the page cache decides, as after a `comms serve` refresh whose state moved on) and
   a rebuild after one changed item, each also as a ratio to the cold build;
2. Pelican (installed into its own virtual environment from PyPI if it is not there yet,
   default theme, pagination 20, Atom feeds) on the same texts as articles, cold, and the
   ratio of its time to comms's cold build (above 1: comms is faster).

`--database` says where the publishing state lives: `none` (the default: var/feeds-state.json,
as on a machine that never sent), an SQLite file in var/, or a throwaway PostgreSQL cluster
(Debian's binaries, as bench/multihost.py) whose stamp a skipped build takes by one query. With
a database, untimed `comms status` and `comms build` first make it and write the feed history,
as a user's earlier commands have.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.render import synthetic_site
from comms.content.content_cache import CACHE_DIR, CLOCK
from comms.core.files import SETTLE
from comms.db.driver import connect

ROOT = Path(__file__).resolve().parent.parent
COMMS = [sys.executable, "-m", "comms"]
PELICAN_CONF = """\
AUTHOR = "Bench"
SITENAME = "Bench"
SITEURL = ""
TIMEZONE = "Europe/Berlin"
DEFAULT_LANG = "de"
DEFAULT_PAGINATION = 20
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/{slug}.atom.xml"
RELATIVE_URLS = True
"""


def comms_site(folder: Path, events: int, practices: int) -> None:
    """The repository's sample site plus `events` events and `practices` practices."""
    folder.mkdir(parents=True)
    (folder / "comms.toml").write_bytes((ROOT / "comms.toml").read_bytes())
    shutil.copytree(ROOT / "content", folder / "content")
    shutil.copytree(ROOT / "static", folder / "static")
    with tempfile.TemporaryDirectory(prefix="comms-bench-gen-") as tmp:
        synthetic_site(Path(tmp), events, practices, 0)
        for sub in ("events", "practices"):
            for path in sorted((Path(tmp) / "content" / sub).iterdir()):
                shutil.copy(path, folder / "content" / sub / path.name)


def pelican_site(comms: Path, folder: Path) -> int:
    """Every event and practice of `comms` as a Pelican article; how many."""
    content = folder / "content"
    content.mkdir(parents=True)
    (folder / "pelicanconf.py").write_text(PELICAN_CONF, encoding="utf-8")
    count = 0
    for kind in ("events", "practices"):
        for path in sorted((comms / "content" / kind).glob("*.md")):
            if path.name.count(".") > 1:
                continue  # a translation
            front, _, body = path.read_text("utf-8").removeprefix("---\n").partition("\n---\n")
            meta = dict(
                line.split(":", 1) for line in front.splitlines() if line and line[0] != " "
            )
            title = meta.get("title", path.stem).strip().strip('"')
            day = (meta.get("start") or "2020-01-01").strip()[:10]
            summary = meta.get("summary", "").strip().strip('"')
            header = f"Title: {title}\nDate: {day}\nCategory: {kind}\nSummary: {summary}\n"
            (content / f"{kind}-{path.stem}.md").write_text(f"{header}\n{body}", "utf-8")
            count += 1
    return count


#: CPU seconds of the last `timed` command (user + system, its worker processes included).
CPU: list[float] = []


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of `command` (it must succeed); its CPU seconds go to `CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    environ = {**os.environ, **(env or {})}
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=environ)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def pelican_python(venv: Path) -> Path | None:
    """The Python of a virtual environment with Pelican, made if missing; None if impossible."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "pelican").exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "pip"), "install", "-q", "pelican", "markdown"]
            subprocess.run(pip, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"Pelican could not be installed ({exc}); comms only")
            return None
    return python


LABELS = ("cold", "cold, 1 worker", "no change", "no change, no record", "one item changed")


@contextlib.contextmanager
def database(kind: str, site: Path) -> Iterator[dict[str, str]]:
    """The environment that gives the builds of `site` the `kind` of database (`--database`)."""
    if kind == "none":
        yield {}
    elif kind == "sqlite":
        yield {"COMMS_DATABASE_URL": f"sqlite:///{site}/var/bench.db"}
    else:
        from bench.multihost import new_database, postgres

        with postgres() as prefix:
            yield {"COMMS_DATABASE_URL": new_database(prefix, "bench")}


def forget_feed_history(url: str | None, site: Path) -> None:
    """Drop the feed history a cold build would not have: var/feeds-state.json, or the
    database's records (so that cold builds compare alike across `--database`)."""
    (site / "var" / "feeds-state.json").unlink(missing_ok=True)
    opened = connect(url) if url else None
    if opened is not None:
        conn, _ = opened
        try:
            conn.cursor().execute("DELETE FROM feed_items")
        finally:
            conn.close()


def content_clock(site: Path) -> int | None:
    """When the content cache last began a reading (its clock file's mtime); None before."""
    try:
        return (site / CACHE_DIR / CLOCK).stat().st_mtime_ns
    except FileNotFoundError:
        return None


def comms_rounds(
    site: Path, rounds: int, base: dict[str, str] | None = None
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each kind of build of `site` (`LABELS`), `rounds` each, with the
    environment `base` (`database`)."""
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in LABELS}
    changed = sorted((site / "content" / "events").glob("*-veranstaltung-*.md"))[0]
    original = changed.read_text("utf-8")

    def run(label: str, env: dict[str, str] | None = None) -> None:
        wall = timed([*COMMS, "build"], site, {**(base or {}), **(env or {})})
        times[label].append((wall, CPU[-1]))

    def cold(label: str, env: dict[str, str] | None = None) -> None:
        shutil.rmtree(site / "public", ignore_errors=True)
        shutil.rmtree(site / "var" / "cache", ignore_errors=True)
        forget_feed_history((base or {}).get("COMMS_DATABASE_URL"), site)
        run(label, env)

    if base:
        # A build alone leaves no database behind (its state stays in var/ until a command
        # that opens the store creates it): `comms status` does, as a user's first send would.
        timed([*COMMS, "status"], site, base)
        timed([*COMMS, "build"], site, base)
    for n in range(rounds):
        cold("cold, 1 worker", {"COMMS_RENDER_WORKERS": "1"})
        cold("cold")
        # A build records the stamps that let the next one skip only when nothing it read
        # changed within SETTLE before it (and the cold build wrote the feed history): an
        # untimed build after that records them, as an editor's next build would.
        time.sleep(SETTLE / 1e9 + 0.1)
        timed([*COMMS, "build"], site, base)
        before = content_clock(site)
        run("no change")
        if content_clock(site) != before:
            sys.exit("the build with nothing changed read the content: it was not skipped")
        shutil.rmtree(site / "var" / "cache" / "build", ignore_errors=True)
        run("no change, no record")
        changed.write_text(original.replace("Rathaus", f"Rathaus ({n + 1}.)", 1), "utf-8")
        run("one item changed")
    changed.write_text(original, "utf-8")
    return times


def main() -> None:
    """Build both sites and print the times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1300)
    parser.add_argument("--practices", type=int, default=1300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pelican-venv", type=Path, default=Path("/tmp/pelican-venv"))
    parser.add_argument("--no-pelican", action="store_true")
    parser.add_argument("--database", choices=("none", "sqlite", "postgresql"), default="none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        site = Path(tmp) / "comms"
        comms_site(site, args.events, args.practices)
        with database(args.database, site) as env:
            times = comms_rounds(site, args.rounds, env)
        files = sum(1 for path in (site / "public").rglob("*") if path.is_file())
        cold = statistics.median(wall for wall, _ in times["cold"])
        print(
            f"comms: sample + {args.events + args.practices} items, {files} files, "
            f"publishing state: {args.database}"
        )
        print(f"  {'':<22} {'wall':>7}    {'CPU':>7}    runs (wall)")
        for label, values in times.items():
            if not values:
                continue
            median = statistics.median(wall for wall, _ in values)
            cpu = statistics.median(used for _, used in values)
            shown = ", ".join(f"{wall:.2f}" for wall, _ in values)
            ratio = f"{median / cold:5.2f} × cold"
            print(f"  {label:<22} {median:7.2f} s  {cpu:7.2f} s  ({shown})  {ratio}")
        python = None if args.no_pelican else pelican_python(args.pelican_venv)
        if python is None:
            return
        folder = Path(tmp) / "pelican"
        articles = pelican_site(site, folder)
        runs = []
        for _ in range(args.rounds):
            shutil.rmtree(folder / "output", ignore_errors=True)
            command = [str(python), "-m", "pelican", "content", "-o", "output", "-s"]
            runs.append(timed([*command, "pelicanconf.py"], folder))
        pelican = statistics.median(runs)
        pelican_cpu = statistics.median(CPU[-len(runs) :])
        made = sum(1 for path in (folder / "output").rglob("*") if path.is_file())
        print(f"Pelican: {articles} articles, {made} files")
        shown = ", ".join(f"{r:.2f}" for r in runs)
        print(f"  {'cold':<22} {pelican:7.2f} s  {pelican_cpu:7.2f} s  ({shown})")
        print(f"comms cold build vs Pelican: {pelican / cold:.2f} × as fast (target ≥ 3.5)")
        one = statistics.median(wall for wall, _ in times["cold, 1 worker"])
        print(f"comms cold build in one process vs Pelican: {pelican / one:.2f} × as fast")


if __name__ == "__main__":
    main()
