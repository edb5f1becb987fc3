"""Benchmark: one `/metrics` scrape with a million delivery rows (target: under 50 ms).

Run: .venv/bin/python bench/metrics.py [--deliveries 1000000] [--campaigns 10] [--rounds 20]
                                       [--postgresql]

Makes a database by the real migrations, then `--subscribers` people (two consent rows each,
one sign-up every five minutes over the past year) and `--campaigns` campaigns of equal size
holding `--deliveries` rows together: every campaign done (95 % sent, 3 % failed, 2 %
skipped) except the last, which is half-way through a send (all its sent rows updated within
the last minute: the send rate reads each). Prints the first scrape (done campaigns are
counted once per process) and the median of `--rounds` scrapes through
`MetricsEndpoint.answer` (collector, queries and text format) in milliseconds. With
`--postgresql` also on a throwaway cluster (as bench/multihost.py), vacuumed after the load as
autovacuum would.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds  # noqa: E402
from comms.alerts.metrics import MetricsEndpoint  # noqa: E402
from comms.core.clock import now_utc  # noqa: E402
from comms.core.config import load_config  # noqa: E402
from comms.db.store import open_store  # noqa: E402
from comms.db.tables import campaigns, consent, deliveries, subscribers  # noqa: E402

TOKEN = "bench-token"
CHUNK = 50_000


def fill(engine: sa.Engine, people: int, count: int, groups: int) -> None:
    """People, consent rows and `count` deliveries in `groups` campaigns."""
    now = now_utc()
    with engine.begin() as conn:
        for start in range(0, people, CHUNK):
            rows = [
                {"uid": f"u{n}", "email": f"p{n}@example.org", "suppression_key": f"k{n}",
                 "language": "de", "status": "pending", "created_at": now, "updated_at": now}
                for n in range(start, min(people, start + CHUNK))
            ]  # fmt: skip
            conn.execute(sa.insert(subscribers), rows)
        ids = conn.execute(sa.select(subscribers.c.id)).scalars().all()
        for start in range(0, len(ids), CHUNK):
            # One sign-up every five minutes over the past year: about 290 in the last day.
            rows = [
                {"subscriber_id": sid, "action": action, "at": now - timedelta(minutes=5 * sid),
                 "source": "bench"}
                for sid in ids[start : start + CHUNK]
                for action in ("request", "confirm")
            ]  # fmt: skip
            conn.execute(sa.insert(consent), rows)
        size = count // groups
        for g in range(groups):
            running = g == groups - 1
            cid = conn.execute(
                sa.insert(campaigns)
                .values(slug=f"issue-{g}", content_hash="h", recipients=size,
                        status="sending" if running else "done",
                        created_at=now - timedelta(days=30 - g), updated_at=now)
                .returning(campaigns.c.id)
            ).scalar_one()  # fmt: skip
            for start in range(0, size, CHUNK):
                rows = []
                for n in range(start, min(size, start + CHUNK)):
                    if running:
                        status = "sent" if n < size // 2 else "queued"
                    else:
                        status = "sent" if n % 100 < 95 else "failed" if n % 100 < 98 else "skipped"
                    rows.append({"campaign_id": cid, "status": status, "attempts": 1,
                                 "queued_at": now, "updated_at": now})  # fmt: skip
                conn.execute(sa.insert(deliveries), rows)


def measure(url: str | None, args: argparse.Namespace, label: str) -> None:
    """Fill a fresh database, then time scrapes."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "comms.toml").write_text("", encoding="utf-8")
        overrides = {"database_url": url} if url else {}
        config = load_config(
            folder / "comms.toml", overrides, environ={"COMMS_METRICS_TOKEN": TOKEN}
        )
        store = open_store(config)
        fill(store.engine, args.subscribers, args.deliveries, args.campaigns)
        if store.engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load: statistics and the visibility map, so
            # that the counts are index-only scans.
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        endpoint = MetricsEndpoint(config, store.engine)
        first = median_seconds(lambda: endpoint.answer(f"Bearer {TOKEN}"), 1)
        answer = endpoint.answer(f"Bearer {TOKEN}")
        assert answer.status == 200, answer
        seconds = median_seconds(lambda: endpoint.answer(f"Bearer {TOKEN}"), args.rounds)
        lines = answer.body.count(b"\n")
        print(
            f"{label}: {args.deliveries:,} deliveries in {args.campaigns} campaigns, "
            f"{args.subscribers:,} people: /metrics first {first * 1000:.1f} ms, "
            f"then median {seconds * 1000:.1f} ms "
            f"({len(answer.body):,} bytes, {lines} lines)"
        )
        store.close()


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    measure(None, args, "SQLite")
    if args.postgresql:
        from bench.multihost import postgres

        with postgres() as url:
            measure(url, args, "PostgreSQL")


if __name__ == "__main__":
    main()
