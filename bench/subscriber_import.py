"""Benchmark: `comms subscribers import` of a large CSV file (target: 100,000 rows in ≤ 10 s).

Run: .venv/bin/python bench/subscriber_import.py [--rows 100000]
Imports --rows and a tenth of them, each into a fresh SQLite database, and prints the larger
as a ratio to the smaller measured in the same run (10: linear in the rows) and its seconds
against the target. tests/test_subscribers.py checks the queries per chunk instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.send import _import

TARGET = 10.0  # seconds per 100,000 rows


def main() -> None:
    """Print both imports, their ratio and the full size against the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        small_rows = args.rows // 10
        small, small_cpu = _import(Path(tmp) / "small", small_rows)
        full, full_cpu = _import(Path(tmp) / "full", args.rows)
    print(f"import of {small_rows:,} rows: {small:.2f} s ({small_cpu:.2f} s CPU)")
    print(f"import of {args.rows:,} rows: {full:.2f} s ({full_cpu:.2f} s CPU)")
    print(
        f"ratio: {full / small:.1f} x the tenth, {full_cpu / small_cpu:.1f} x in CPU (10: linear)"
    )
    budget = TARGET * args.rows / 100_000
    print(
        f"target: {budget:.1f} s; {full / budget:.2f} x the target ({full_cpu / budget:.2f} in CPU)"
    )


if __name__ == "__main__":
    main()
