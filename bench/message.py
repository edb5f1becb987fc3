"""Benchmark: messages built per second from one rendered issue, against re-serialising.

Run: .venv/bin/python bench/message.py [RECIPIENTS]   (default 20,000)

Two issues: the synthetic one of the tests (≈ 20 KB HTML) and the largest rendered sample issue;
then, with DKIM on (a fresh 2048-bit key), the synthetic issue for a tenth of the recipients.

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

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from comms.content.site import read_site
from comms.core.config import Config, load_config
from comms.mail.message import MessageFactory, Recipient
from comms.publish.render import RenderedIssue, render_issue
from tests.issue_sample import SECRET, rendered_issue


def run(config: Config, issue: RenderedIssue, count: int) -> None:
    """Build `count` messages of `issue`, then re-serialise count/10 as the baseline."""
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
    print(f"issue {issue.slug}: {len(issue.html):,} chars HTML, message {len(sample):,} bytes")
    print(f"  factory setup (once per issue): {setup * 1000:.1f} ms")
    print(f"  MessageFactory.build: {count:,} messages in {built:.2f} s = {rate:,.0f} msg/s")
    print(f"  baseline parse+serialise: {base_rate:,.0f} msg/s ({rounds:,} rounds)")
    print(f"  ratio build / baseline: {rate / base_rate:.1f}x; {size / count:,.0f} bytes/msg")


def main() -> None:
    """The synthetic issue, then the largest issue of the bundled sample site."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "comms.toml").write_text("", encoding="utf-8")
        run(load_config(Path(folder) / "comms.toml", environ={}), rendered_issue(), count)
    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "comms.toml", environ={})
    site, _ = read_site(config)
    issues = [render_issue(config, site, issue) for issue in site.issues.values()]
    run(config, max(issues, key=lambda issue: len(issue.html)), count)
    with tempfile.TemporaryDirectory() as folder:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        (Path(folder) / "dkim.pem").write_bytes(pem)
        (Path(folder) / "comms.toml").write_text(
            '[dkim]\nselector = "s"\ndomain = "example.org"\nkey_file = "dkim.pem"\n'
        )
        config = load_config(Path(folder) / "comms.toml", environ={})
        print("with DKIM (dkimpy, rsa-sha256, 2048 bit):")
        run(config, rendered_issue(), max(1, count // 10))


if __name__ == "__main__":
    main()
