"""Benchmark: Markdown rendering of hostile bodies just inside the limits of comms.content.markup.

Each case fills the body with one punctuation pattern, in blocks and up to a size as large as
the limits allow, renders it in a child process (killed after --timeout seconds) and prints
the time as a ratio to an ordinary body of the same size rendered in the same run.

Run: .venv/bin/python bench/markdown_limits.py [--timeout 30] [--top 10]
"""

from __future__ import annotations

import argparse
import string
import subprocess
import sys

from comms.content.markup import MAX_BLOCK, MAX_BODY, MAX_LINES, markdown_problems

TIMER = """
import sys, time
from comms.content.markup import markdown_to_html
body = sys.stdin.read()
started = time.perf_counter()
markdown_to_html(body)
print(time.perf_counter() - started)
"""


def _body(unit: str) -> str | None:
    """The largest body of `unit` in equal blocks that the limits let through, if any."""
    per_block = MAX_BLOCK // len(unit)
    while per_block > 0:
        block = unit * per_block + "\n\n"
        lines = (block * (MAX_BODY // len(block))).split("\n")
        body = "\n".join(lines[:MAX_LINES])
        if not markdown_problems(body):
            return body
        per_block = per_block * 9 // 10
    return None


def _time(body: str, timeout: float) -> float | None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", TIMER], input=body, capture_output=True, text=True,
            timeout=timeout, check=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return float(out.stdout)


def main() -> None:
    """Print the slowest cases as ratios to the baseline."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    ordinary = _body("Ein ganz gewöhnlicher Satz mit Wörtern. ")
    assert ordinary is not None
    # The fastest of three runs: a shared machine's load only ever adds time.
    baseline = min(_time(ordinary, args.timeout) or float("inf") for _ in range(3))
    print(f"baseline: ordinary body of {len(ordinary):,} characters, {baseline:.3f} s")
    results: list[tuple[float, str]] = []
    for char in string.punctuation:
        for unit in (char, char + "a ", char + "a\n", char + char + "a "):
            body = _body(unit)
            if body is None:
                continue  # refused before rendering, whatever its size
            took = _time(body, args.timeout)
            results.append((float("inf") if took is None else took, repr(unit)))
    results.sort(reverse=True)
    for took, unit in results[: args.top]:
        print(f"{unit:>10}: {took / baseline:6.1f} × baseline")


if __name__ == "__main__":
    main()
