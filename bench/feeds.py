"""Benchmark: 10,000 items → every feed and calendar; `comms refresh` on the unchanged sample.

Run: .venv/bin/python bench/feeds.py [--items N]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from comms.content.models import Award, Event, Issue, Practice, Site
from comms.core.config import Config, load_config
from comms.publish.build import write_output
from comms.publish.feeds import feed_files
from comms.publish.producer import Build
from comms.publish.state import FileState

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Europe/Berlin")
BODY = "<p>" + "Ein Absatz über Integration, Sprache und Arbeit in Niedersachsen. " * 20 + "</p>\n"
REGIONS = ["landesweit", "braunschweig", "leine-weser", "lueneburg", "weser-ems"]
TOPICS = ["sprache", "arbeit", "bildung", "kultur"]


def make_site(count: int, now: datetime) -> Site:
    """Half events (half of them upcoming), then practices, issues and awards."""
    site = Site()
    context = {"tz": TZ}
    common = {"html": BODY, "body": BODY}
    for i in range(count // 2):
        start = now + timedelta(days=i % 720 - 360, hours=i % 9)
        site.events[f"e{i}"] = Event.model_validate(
            {
                **common,
                "slug": f"e{i}",
                "title": f"Veranstaltung „Nummer {i}“",
                "start": start.strftime("%Y-%m-%d %H:%M") if i % 5 else start.date(),
                "location": {
                    "name": "Rathaus",
                    "address": "Markt 1, 30159 Hannover",
                    "city": "Hannover",
                },
                "region": REGIONS[i % 5],
                "topics": TOPICS[: i % 4 + 1],
                "organiser": "Bündnis",
                "status": "cancelled" if i % 17 == 0 else "planned",
                "summary": "Kurz gesagt.",
                "published": (start - timedelta(days=60)).date(),
            },
            context=context,
        )
    for i in range(count * 3 // 10):
        site.practices[f"p{i}"] = Practice.model_validate(
            {
                **common,
                "slug": f"p{i}",
                "title": f"Praxis {i}",
                "organisation": "Verein",
                "city": "Celle",
                "region": REGIONS[i % 5],
                "topics": ["kultur"],
                "summary": "Gut gemacht.",
                "published": (now - timedelta(days=i % 900)).date(),
            },
            context=context,
        )
    for i in range(count * 3 // 20):
        day = (now - timedelta(days=i % 1000)).date()
        site.issues[f"i{i}"] = Issue.model_validate(
            {
                **common,
                "slug": f"i{i}",
                "number": i + 1,
                "subject": f"Ausgabe {i}",
                "preheader": "Neues.",
                "date": day,
                "status": "ready",
                "events": [f"e{i}", f"e{i + 1}"],
                "practices": [f"p{i}"],
            },
            context=context,
        )
    for i in range(count - len(site.events) - len(site.practices) - len(site.issues)):
        site.awards[f"a{i}"] = Award.model_validate(
            {
                **common,
                "slug": f"a{i}",
                "title": f"Sonderpreis {i}",
                "year": 2000 + i % 30,
                "prize_money": 6000,
                "call": {"opens": date(2019, 1, 1), "deadline": date(2019, 7, 31)},
                "summary": "Preis.",
            },
            context=context,
        )
    return site


def bench_feeds(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(ROOT / "comms.toml", environ={})
        config = Config(settings=base.settings, root=Path(tmp), path=None)
        site = make_site(count, config.now())
        total = sum(len(site.by_kind(k)) for k in ("event", "practice", "issue", "award"))
        for label in ("first build (empty state)", "second build (state recorded)"):
            started, cpu = time.perf_counter(), time.process_time()
            files = feed_files(Build(config, site, FileState(config.root)))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            size = sum(len(data) for data in files.values()) / 1e6
            print(
                f"{total} items, {label}: {len(files)} files, {size:.1f} MB "
                f"in {elapsed:.2f} s wall, {cpu:.2f} s CPU"
            )
        started, cpu = time.perf_counter(), time.process_time()
        write_output(Path(tmp) / "public", files)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"writing them to a new output folder: {elapsed:.2f} s wall, {cpu:.2f} s CPU")


def bench_refresh() -> None:
    comms = Path(sys.executable).with_name("comms")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "comms.toml", Path(tmp) / "comms.toml")
        shutil.copytree(ROOT / "content", Path(tmp) / "content")
        command = [str(comms), "--config", str(Path(tmp) / "comms.toml"), "refresh"]
        subprocess.run(command, check=True, capture_output=True)
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            print(
                f"comms refresh, unchanged sample site: {elapsed:.2f} s wall, {cpu:.2f} s CPU "
                f"({out.strip()})"
            )


def main() -> None:
    """Run both benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    bench_feeds(args.items)
    bench_refresh()


if __name__ == "__main__":
    main()
