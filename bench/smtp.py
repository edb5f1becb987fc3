"""Benchmark: SMTP throughput of MessageFactory + SmtpTransport against Postfix smtp-sink.

Run: .venv/bin/python bench/smtp.py [MESSAGES] [CONNECTIONS]   (default 20,000 over 4)

Starts `smtp-sink` on 127.0.0.1, measures `smtp-source` (Postfix's C load generator, messages
of the same size) as the reference, then builds and sends the same number of personalised
messages from one rendered issue over CONNECTIONS threads, one transport each, with and
without PIPELINING. Needs the postfix package (smtp-sink, smtp-source on PATH).
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.postfix import smtp_sink, smtp_source_rate
from comms.core.config import load_config
from comms.mail.message import MessageFactory, Recipient
from comms.mail.smtp import SmtpTransport
from tests.issue_sample import SECRET, rendered_issue


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _send_all(factory: MessageFactory, port: int, count: int, threads: int, pipe: bool) -> float:
    sent = [0] * threads

    def work(index: int) -> None:
        transport = SmtpTransport(
            "127.0.0.1", port, timeout=30, max_per_connection=1000, pipelining=pipe,
            helo_name="bench.example.org",
        )  # fmt: skip
        for i in range(index, count, threads):
            message = factory.build(Recipient(f"u{i:06d}", f"leser.{i}@example.org"))
            transport.send(message.envelope_from, message.recipient, message.data, message.key)
            sent[index] += 1
        transport.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if sum(sent) != count:
        sys.exit(f"only {sum(sent):,} of {count:,} messages were accepted")
    return elapsed


def main() -> None:
    """Reference run with smtp-source, then comms with and without pipelining."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "comms.toml").write_text("", encoding="utf-8")
        config = load_config(Path(folder) / "comms.toml", environ={})
    factory = MessageFactory(config, rendered_issue(), SECRET)
    size = len(factory.build(Recipient("u0", "a@example.org")).data)
    with smtp_sink() as port:
        reference = smtp_source_rate(port, count, threads, size)
        print(f"message size {size:,} bytes, {count:,} messages over {threads} connections")
        print(f"smtp-source (reference): {reference:,.0f} msg/s")
        for pipe in (False, True):
            rate = count / _send_all(factory, port, count, threads, pipe)
            label = "with PIPELINING" if pipe else "lock-step      "
            print(f"comms build+send {label}: {rate:,.0f} msg/s = {rate / reference:.2f} of ref")


if __name__ == "__main__":
    main()
