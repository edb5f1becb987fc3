"""Benchmark: what the guard on outcome writes costs (a late outcome never undoes another run's
claim or a final row, comms/db/outcomes.py).

Run: .venv/bin/python bench/outcomes.py [--deliveries 20000] [--batch 50] [--rounds 5]
                                        [--postgresql]

Claims `--deliveries` rows, then records them as sent in groups of `--batch` (as a send run's
recorder does) through the guarded statement and through the same statement keyed by delivery
id alone (as before the guard), alternating rounds on fresh databases in this one process;
prints microseconds per outcome of each and the median ratio guarded/unguarded. With
`--postgresql` also on a throwaway cluster (as bench/multihost.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.multihost import postgres  # noqa: E402
from comms.core.clock import now_utc  # noqa: E402
from comms.core.config import load_config  # noqa: E402
from comms.db import outcomes  # noqa: E402
from comms.db.outcomes import Outcome  # noqa: E402
from comms.db.people import Consent, NewSubscriber  # noqa: E402
from comms.db.status import DeliveryStatus  # noqa: E402
from comms.db.store import open_store  # noqa: E402
from comms.db.tables import deliveries  # noqa: E402
from comms.sending.campaign import prepare  # noqa: E402

GUARDED = outcomes._RECORD
assert GUARDED._values is not None  # the statement has its SET clause
#: The same SET clause keyed by the delivery id alone.
UNGUARDED = (
    sa.update(deliveries).where(deliveries.c.id == sa.bindparam("did")).values(GUARDED._values)
)


def one_round(folder: Path, url: str | None, count: int, batch: int, guarded: bool) -> float:
    """Seconds per outcome for recording `count` claimed deliveries as sent."""
    overrides = {"database_url": url} if url else {}
    (folder / "comms.toml").write_text("", encoding="utf-8")
    config = load_config(folder / "comms.toml", overrides, environ={})
    store = open_store(config)
    people = ((n, NewSubscriber(f"p{n}@example.org")) for n in range(count))
    store.import_subscribers(people, Consent("import", "bench"), confirmed=True)
    campaign, _ = prepare(store, "bench", "h", [], [])
    now = now_utc()
    claimed = store.ledger.claim(campaign.id, "me", count, now, now)
    outcomes._RECORD = GUARDED if guarded else UNGUARDED
    writer = store.ledger.writer("bench", "me")
    outcomes._RECORD = GUARDED
    began = time.perf_counter()
    for start in range(0, count, batch):
        group = claimed[start : start + batch]
        writer.write([Outcome(c.delivery_id, DeliveryStatus.SENT, "<m@x>") for c in group], now)
    took = time.perf_counter() - began
    writer.close()
    assert store.ledger.counts(campaign.id) == {"sent": count}
    store.close()
    return took / count


def compare(label: str, urls: list[str | None], args: argparse.Namespace) -> None:
    """Alternate guarded and unguarded rounds; print the medians and their ratio."""
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for guarded in (n % 2 == 0, n % 2 == 1):
                folder = Path(tmp) / f"{n}-{guarded}"
                folder.mkdir()
                url = urls.pop(0) if urls else None
                times[guarded].append(one_round(folder, url, args.deliveries, args.batch, guarded))
    g, u = median(times[True]), median(times[False])
    print(f"{label}: guarded {g * 1e6:.1f} µs/outcome, unguarded {u * 1e6:.1f} µs/outcome, "
          f"ratio {g / u:.3f} (median of {args.rounds})")  # fmt: skip


def main() -> None:
    """Run the comparison on SQLite (and PostgreSQL)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    compare("SQLite", [], args)
    if args.postgresql:
        with postgres() as server:  # a URL to append a database name to
            names = [f"b{n}" for n in range(args.rounds * 2)]
            plain = server.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(f"{plain}postgres", autocommit=True) as conn:
                for name in names:
                    conn.execute(f"CREATE DATABASE {name}")
            compare("PostgreSQL", [f"{server}{name}" for name in names], args)


if __name__ == "__main__":
    main()
