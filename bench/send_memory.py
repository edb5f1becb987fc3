"""Benchmark: peak memory of a send run against the list size (it must stay flat).

Run: .venv/bin/python bench/send_memory.py [--sizes 10000,100000] [--connections 4]

Needs Postfix's `smtp-sink` (as bench/send.py). For each size: a fresh SQLite database with that
many confirmed subscribers, then a child process that does what `comms send` does (render,
snapshot, send to `smtp-sink`) and reports its peak RSS (`ru_maxrss`) and the send phase's
rate. Add 200000 to `--sizes` for the 10 × scale run; the cost of each size is printed so that
its growth shows (rows per second of the import, messages per second of the send).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postfix import smtp_sink  # noqa: E402
from bench.send import _import, _run_child  # noqa: E402


def main() -> None:
    """Measure every size and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp, smtp_sink() as port:
        for size in sizes:
            folder = Path(tmp) / f"n{size}"
            seconds, _ = _import(folder, size)
            result = _run_child(folder, port, args.connections)
            rate = result["sent"] / result["send"]
            print(
                f"{size:>8,} subscribers: peak RSS {result['maxrss_kb'] / 1024:5.0f} MB; "
                f"import {size / seconds:,.0f} rows/s; "
                f"snapshot and render {result['setup']:.1f} s; "
                f"send {result['sent']:,.0f} in {result['send']:.1f} s = {rate:,.0f} msg/s; "
                f"CPU {result['cpu_us_per_message']:.0f} µs per message",
                flush=True,
            )


if __name__ == "__main__":
    main()
