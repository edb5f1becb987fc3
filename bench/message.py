"""Benchmark: messages built per second from one rendered issue, against re-serialising.

Run: .venv/bin/python bench/message.py [RECIPIENTS]   (default 20,000)

The baseline is what a naive send path pays per recipient: parse the issue's message and
serialise it again (`email.message_from_bytes(...).as_bytes()`), before any personalisation.
"""

from __future__ import annotations

import email
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comms.config import load_config
from comms.message import MessageFactory, Recipient
from tests.issue_sample import SECRET, rendered_issue


def main() -> None:
    """Build N messages, then re-serialise N/10 as the baseline, and print both rates."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "comms.toml").write_text("", encoding="utf-8")
        config = load_config(Path(folder) / "comms.toml", environ={})
    issue = rendered_issue()
    recipients = [
        Recipient(f"u{i:06d}", f"leser.{i}@example.org", f"Leserin Nr. {i}") for i in range(count)
    ]
    start = time.perf_counter()
    factory = MessageFactory(config, issue, SECRET)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    size = 0
    for recipient in recipients:
        size += len(factory.build(recipient).data)
    built = time.perf_counter() - start
    sample = factory.build(recipients[0]).data
    rounds = max(1, count // 10)
    start = time.perf_counter()
    for _ in range(rounds):
        email.message_from_bytes(sample).as_bytes()
    baseline = (time.perf_counter() - start) / rounds
    rate, base_rate = count / built, 1 / baseline
    print(f"issue: {len(issue.html):,} chars HTML, message {len(sample):,} bytes")
    print(f"factory setup (once per issue): {setup * 1000:.1f} ms")
    print(f"MessageFactory.build: {count:,} messages in {built:.2f} s = {rate:,.0f} msg/s")
    print(f"baseline parse+serialise: {base_rate:,.0f} msg/s ({rounds:,} rounds)")
    print(f"ratio build / baseline: {rate / base_rate:.1f}x; {size / count:,.0f} bytes/msg")


if __name__ == "__main__":
    main()
