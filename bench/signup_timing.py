"""Benchmark: does the sign-up answer's time tell subscribed from unknown addresses?

Run: .venv/bin/python bench/signup_timing.py [RUNS]   (default 10)

Each run signs up 30 active and 30 unknown addresses three times each over HTTP against the
real app (the groups interleaved at random), takes each address's median, and prints the
unknown group's median answer time as a ratio of the active group's (1.00: the same) and the
accuracy of the best single threshold (0.5: guessing; the test requires < 0.7).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comms.audience.mailer import SETTLE
from tests.test_signup_timing import best_threshold_accuracy, measure
from tests.webkit import open_web, served


def main(runs: int) -> None:
    """Print one line per run and the mean accuracy."""
    accuracies = []
    with tempfile.TemporaryDirectory() as folder:
        overrides = {"subscribe": {"rate_limit": 1_000_000}}
        with open_web(Path(folder), settle=SETTLE, **overrides) as web, served(web.app) as port:
            for run in range(runs):
                active, unknown = measure(web, port, run)
                accuracy = best_threshold_accuracy(active, unknown)
                accuracies.append(accuracy)
                ratio = statistics.median(unknown) / statistics.median(active)
                print(f"run {run}: unknown/active median time {ratio:.2f}, accuracy {accuracy:.2f}")
    print(f"mean accuracy over {runs} runs: {statistics.mean(accuracies):.2f} (limit 0.70)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
