"""Benchmark: render one issue, build the sample site, build a synthetic site (2,000 events …).

Run: .venv/bin/python bench/render.py [--events N --practices N --issues N]
Targets on the 2-core machine: per-issue render ≤ 50 ms, synthetic site build ≤ 10 s.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from comms.content.models import Site
from comms.content.reader import read_content
from comms.core.config import Config, load_config
from comms.publish.build import collect, write_output
from comms.publish.producer import Build
from comms.publish.render import render_issue
from comms.publish.state import FileState

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ["landesweit", "braunschweig", "leine-weser", "lueneburg", "weser-ems"]
TOPICS = ["sprache", "arbeit", "bildung", "wohnen", "engagement", "frauen", "kultur"]
CITIES = ["Hannover", "Braunschweig", "Lüneburg", "Oldenburg", "Göttingen", "Osnabrück"]
BODY = (
    "Die Veranstaltung richtet sich an Haupt- und Ehrenamtliche, Unternehmen und "
    "Initiativen. Im Mittelpunkt stehen **Sprache**, Arbeit und Begegnung.\n\n"
    "- Impulsvortrag und Gespräch\n- Foren am Nachmittag\n- Markt der Möglichkeiten\n\n"
    "Weitere Informationen gibt es in der [Programmübersicht](https://example.org/programm).\n"
)


def _load(folder: Path) -> tuple[Config, Site]:
    config = load_config(folder / "comms.toml")
    s = config.settings
    site, errors = read_content(config.content_dir, config.tz, s.regions, s.topics)
    failures = [e for e in errors if not e.warning]
    if failures:
        raise SystemExit("\n".join(e.format(config.root) for e in failures[:5]))
    return config, site


def _write(path: Path, front: str, body: str) -> None:
    path.write_text(f"---\n{front}---\n{body}", encoding="utf-8")


def synthetic_site(folder: Path, events: int, practices: int, issues: int) -> None:
    """Write comms.toml and content/ with the given numbers of items (deterministic)."""
    rng = random.Random(2020)
    (folder / "comms.toml").write_text(
        'content_dir = "content"\noutput_dir = "public"\nreference_date = 2020-01-15\n',
        encoding="utf-8",
    )
    content = folder / "content"
    for sub in ("events", "practices", "issues", "awards"):
        (content / sub).mkdir(parents=True)
    start = date(2016, 1, 1)
    event_slugs = []
    for n in range(events):
        day = start + timedelta(days=n * 2000 // max(events, 1))
        slug = f"{day.isoformat()}-veranstaltung-{n}"
        event_slugs.append(slug)
        city = rng.choice(CITIES)
        front = (
            f'title: "Integrationsdialog Nr. {n} in {city}"\n'
            f"start: {day.isoformat()} 10:00\nend: {day.isoformat()} 16:00\n"
            f'location:\n  name: "Rathaus {city}"\n  address: "Markt 1, 30159 {city}"\n'
            f"  city: {city}\nregion: {rng.choice(REGIONS)}\n"
            f"topics: [{', '.join(rng.sample(TOPICS, 2))}]\n"
            f'organiser: "Bündnis „Niedersachsen packt an“"\n'
            f"registration: https://example.org/anmeldung/{n}\n"
            f'summary: "Ein Dialog über Integration vor Ort mit Gästen aus {city}."\n'
        )
        _write(content / "events" / f"{slug}.md", front, BODY)
    for n in range(practices):
        city = rng.choice(CITIES)
        front = (
            f'title: "Gutes Beispiel Nr. {n} aus {city}"\norganisation: "Initiative {n} e. V."\n'
            f"city: {city}\nregion: {rng.choice(REGIONS)}\ntopics: [kultur]\n"
            f'contact:\n  name: "Team {n}"\n  email: team{n}@example.org\n'
            f"url: https://example.org/praxis/{n}\n"
            f'summary: "Wie eine Initiative in {city} Begegnung möglich macht."\n'
        )
        _write(content / "practices" / f"praxis-{n}.md", front, BODY)
    for year in range(2016, 2021):
        front = (
            f'title: "Sonderpreis {year}"\nyear: {year}\nprize_money: 6000\n'
            f"call:\n  opens: {year}-03-01\n  deadline: {year}-07-31\n"
            f'winners:\n  - {{name: "Verein {year}", project: "Projekt", city: Hannover}}\n'
            f'summary: "Der Sonderpreis {year}."\n'
        )
        _write(content / "awards" / f"sonderpreis-{year}.md", front, BODY)
    for n in range(issues):
        day = start + timedelta(days=n * 2000 // max(issues, 1))
        chosen = rng.sample(event_slugs, min(5, len(event_slugs)))
        picked = rng.sample(range(practices), min(3, practices))
        front = (
            f'number: {n + 1}\nsubject: "Newsletter {n + 1}: Termine und gute Beispiele"\n'
            f'preheader: "Fünf Termine, drei gute Beispiele und der Sonderpreis"\n'
            f"date: {day.isoformat()}\nstatus: ready\n"
            f"events: [{', '.join(chosen)}]\n"
            f"practices: [{', '.join(f'praxis-{p}' for p in picked)}]\n"
            f"award: sonderpreis-{min(max(day.year, 2016), 2020)}\n"
        )
        _write(
            content / "issues" / f"ausgabe-{n + 1}.md",
            front,
            "Liebe Leserinnen und Leser,\n\n" + BODY,
        )


@contextmanager
def timer(label: str) -> Iterator[None]:
    """Print how long the block took."""
    begin = time.perf_counter()
    yield
    print(f"  {label:<38} {time.perf_counter() - begin:8.3f} s")


def build(folder: Path, label: str) -> None:
    """Time read + render (collect) + write of one site."""
    print(f"{label}:")
    begin = time.perf_counter()
    with timer("read content"):
        config, site = _load(folder)
    with timer("render (collect)"):
        files = collect(Build(config, site, FileState(config.root)))
    with timer("write output (new folder)"):
        write_output(folder / "bench-public", files)
    total = time.perf_counter() - begin
    print(f"  {'total build':<38} {total:8.3f} s  ({len(files)} files)")


def per_issue(folder: Path) -> None:
    """Render every issue of the sample once warm; report mean/median/max in ms."""
    config, site = _load(folder)
    issue = site.issues[sorted(site.issues)[0]]
    begin = time.perf_counter()
    render_issue(config, site, issue)
    cold = (time.perf_counter() - begin) * 1000
    samples = []
    for _ in range(20):
        for issue in site.issues.values():
            begin = time.perf_counter()
            render_issue(config, site, issue)
            samples.append((time.perf_counter() - begin) * 1000)
    print("Per-issue render (sample issues, MJML + text):")
    print(f"  first render (templates compiled)      {cold:8.1f} ms")
    print(
        f"  warm: mean {statistics.mean(samples):.2f} ms, median "
        f"{statistics.median(samples):.2f} ms, max {max(samples):.2f} ms "
        f"({len(samples)} renders)"
    )


def main() -> None:
    """Run the three measurements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--practices", type=int, default=500)
    parser.add_argument("--issues", type=int, default=100)
    args = parser.parse_args()
    per_issue(ROOT)
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        for folder, label in sites(Path(tmp), args.events, args.practices, args.issues):
            build(folder, label)


def sites(tmp: Path, events: int, practices: int, issues: int) -> Iterator[tuple[Path, str]]:
    """A copy of the sample site, then a synthetic one, each with its label."""
    sample = tmp / "sample"
    sample.mkdir()
    (sample / "comms.toml").write_bytes((ROOT / "comms.toml").read_bytes())
    shutil.copytree(ROOT / "content", sample / "content")
    shutil.copytree(ROOT / "static", sample / "static")
    yield sample, "Sample site"
    synthetic = tmp / "synthetic"
    synthetic.mkdir()
    synthetic_site(synthetic, events, practices, issues)
    yield synthetic, f"Synthetic site ({events} events, {practices} practices, {issues} issues)"


if __name__ == "__main__":
    main()
