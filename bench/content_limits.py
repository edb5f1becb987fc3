"""Benchmark: reading hostile content files (YAML alias bombs, bodies over the Markdown limits)
as ratios to reading an ordinary file of the same size, in the same run.

Run: .venv/bin/python bench/content_limits.py [--rounds 5]
Every case is refused (tests/test_content_limits.py checks the errors); a refusal should cost
about what reading an ordinary body of that size costs (ratio near 1, at most a few).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import median_seconds
from comms.content.models import KINDS
from comms.content.reader import read_file
from tests.test_content_limits import CONTEXT, FRONT, PATHOLOGICAL, _laughs

ORDINARY = "Ein ganz gewöhnlicher Satz mit Wörtern. "


def _reading(path: Path, text: str, rounds: int) -> float:
    """Median seconds to read `text` as an event file."""
    path.write_text(text, encoding="utf-8")
    return median_seconds(lambda: read_file(path, KINDS["event"], CONTEXT), rounds, warm=True)


def _ordinary(size: int) -> str:
    """An ordinary event file of about `size` characters of body."""
    paragraph = ORDINARY * 20 + "\n\n"
    return FRONT + "---\n" + paragraph * max(1, size // len(paragraph))


def main() -> None:
    """Print each case as a ratio to an ordinary body of its size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    cases = {"yaml-alias-bomb": FRONT + _laughs(12) + "---\nText.\n"}
    cases |= {name: FRONT + "---\n" + body for name, body in PATHOLOGICAL.items()}
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        path = Path(tmp) / "x.md"
        for name, text in cases.items():
            took = _reading(path, text, rounds)
            baseline = _reading(path, _ordinary(len(text)), rounds)
            print(f"{name:>20} ({len(text):>7,} chars): {took / baseline:6.2f} x ordinary")


if __name__ == "__main__":
    main()
