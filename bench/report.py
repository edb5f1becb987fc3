"""Benchmark: `comms report ISSUE` over an issue of 100,000 deliveries (target: under 1 s).

Run: .venv/bin/python bench/report.py [--deliveries 100000] [--rounds 5] [--postgresql]

Imports `--deliveries` people with regions and topics, starts one campaign for all of them
(which counts its reach), settles the deliveries (most sent, some failed or waiting for a
retry), adds bounce events and a month of daily counters, then times the whole report (the
figures' aggregate queries and the JSON) `--rounds` times; prints the median and the worst.
With `--postgresql` also on a throwaway cluster (as bench/multihost.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from statistics import median

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.multihost import postgres  # noqa: E402
from comms.core.clock import now_utc  # noqa: E402
from comms.core.config import load_config  # noqa: E402
from comms.db.people import Consent, NewSubscriber  # noqa: E402
from comms.db.status import DeliveryStatus  # noqa: E402
from comms.db.store import Store, open_store  # noqa: E402
from comms.db.tables import bounce_events, daily_counts, deliveries  # noqa: E402
from comms.reports.issue_report import issue_report  # noqa: E402

REGIONS = ("hannover", "emsland", "harz", "heide", "region-braunschweig")
TOPICS = ("sprache", "arbeit", "wohnen", "bildung")


def fill(folder: Path, url: str | None, count: int) -> tuple[Store, str]:
    """A database with one issue of `count` settled deliveries; (store, slug)."""
    overrides = {"database_url": url} if url else {}
    (folder / "comms.toml").write_text("", encoding="utf-8")
    config = load_config(folder / "comms.toml", overrides, environ={})
    store = open_store(config)
    people = (
        (n, NewSubscriber(f"p{n}@example.org", regions=(REGIONS[n % 5],) if n % 3 else (),
                          topics=(TOPICS[n % 4], TOPICS[(n + 1) % 4]) if n % 2 else ()))
        for n in range(count)
    )  # fmt: skip
    store.import_subscribers(people, Consent("import", "bench"), confirmed=True)
    now = now_utc()
    campaign, _ = store.ledger.start("bench", "h", [], [], now)
    d = deliveries.c
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(d.campaign_id == campaign.id)
            .values(status=DeliveryStatus.SENT, attempts=1, updated_at=now + timedelta(hours=1))
        )
        for status, modulo in ((DeliveryStatus.FAILED, 50), (DeliveryStatus.QUEUED, 33)):
            conn.execute(
                sa.update(deliveries)
                .where(d.campaign_id == campaign.id, d.id % modulo == 0)
                .values(status=status)
            )
        conn.execute(
            sa.insert(bounce_events),
            [
                {"event_key": f"e{n}", "kind": ("hard", "soft", "complaint")[n % 3],
                 "source": "dsn", "at": now, "campaign_id": campaign.id}
                for n in range(count // 100)
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(daily_counts),
            [
                {"kind": "view", "subject": "bench", "item": "", "count": 40 + day,
                 "day": (now + timedelta(days=day)).date()}
                for day in range(30)
            ],
        )  # fmt: skip
    return store, "bench"


def measure(label: str, folder: Path, url: str | None, args: argparse.Namespace) -> None:
    """Fill one database, then time the report."""
    store, slug = fill(folder, url, args.deliveries)
    times = []
    for _ in range(args.rounds):
        began = time.perf_counter()
        data = issue_report(store.engine, slug).to_json()
        times.append(time.perf_counter() - began)
    assert data["recipients"] == args.deliveries
    print(f"{label}: report of {args.deliveries:,} deliveries in {median(times) * 1000:.0f} ms "
          f"(median of {args.rounds}, worst {max(times) * 1000:.0f} ms); "
          f"delivered {data['delivered']:,}")  # fmt: skip
    store.close()


def main() -> None:
    """Run on SQLite (and PostgreSQL)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sqlite").mkdir()
        measure("SQLite", Path(tmp) / "sqlite", None, args)
        if args.postgresql:
            with postgres() as server:
                plain = server.replace("postgresql+psycopg://", "postgresql://")
                with psycopg.connect(f"{plain}postgres", autocommit=True) as conn:
                    conn.execute("CREATE DATABASE bench_report")
                (Path(tmp) / "pg").mkdir()
                measure("PostgreSQL", Path(tmp) / "pg", f"{server}bench_report", args)


if __name__ == "__main__":
    main()
