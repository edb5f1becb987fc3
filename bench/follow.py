"""Benchmark: what a standing-by server's output follow costs per beat.

Run: .venv/bin/python bench/follow.py [--repeat 20] [--postgresql]

On a copy of the sample site, as ratios to a rebuild of an up-to-date output folder (read the
content, render everything, compare, write nothing) in the same run:
- a quiet beat: nothing started, the refresh interval not over (one query for the started
  campaigns); this is what a web-only `comms serve` pays every quarter of the lease;
- the beat after a campaign started elsewhere (the rebuild that writes the issue's pages; once).
With --postgresql the database is a throwaway PostgreSQL cluster (as bench/multihost.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds  # noqa: E402
from comms.core.config import load_config  # noqa: E402
from comms.db.store import open_store  # noqa: E402
from comms.schedule.follow import Follower  # noqa: E402
from comms.sending.campaign import prepare  # noqa: E402

ENV = {"COMMS_SECRET_KEY": "bench-follow-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"}


@contextmanager
def _database(postgresql: bool, folder: Path) -> Iterator[str]:
    if not postgresql:
        yield f"sqlite:///{folder / 'comms.db'}"
        return
    from bench.multihost import new_database, postgres

    with postgres() as prefix:
        yield new_database(prefix, "follow")


def main() -> None:
    """Measure and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _database(args.postgresql, Path(tmp)) as url:
        site = Path(tmp) / "site"
        site.mkdir()
        shutil.copytree(ROOT / "content", site / "content")
        shutil.copytree(ROOT / "static", site / "static")
        shutil.copy(ROOT / "comms.toml", site / "comms.toml")
        config = load_config(site / "comms.toml", {"database_url": url}, environ=ENV)
        store = open_store(config)
        clock = [0.0]
        follower = Follower(config, store.engine, lambda: clock[0])
        follower.beat()  # the first build

        def rebuild() -> None:
            follower.sent = None  # as if something had started
            assert follower.beat()

        build = median_seconds(rebuild, args.repeat)
        quiet = median_seconds(follower.beat, args.repeat * 10)
        prepare(store, "2020-02-newsletter", "h", [], [])
        began = time.perf_counter()
        assert follower.beat()
        after_send = time.perf_counter() - began
        store.close()
    backend = "PostgreSQL" if args.postgresql else "SQLite"
    print(f"output follow on the sample site ({backend}), median of {args.repeat}:")
    print(f"  rebuild, nothing to write (baseline): {build * 1000:.0f} ms = 1")
    print(f"  quiet beat (one query):               {quiet / build:.4f}")
    print(f"  beat after a campaign started (once): {after_send / build:.3f}")


if __name__ == "__main__":
    main()
