"""Postfix's load tools for the benchmarks: `smtp-sink` on 127.0.0.1 and timed `smtp-source`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_sink() -> Iterator[int]:
    """Run `smtp-sink` on 127.0.0.1 (as nobody when we are root); yields its port."""
    if not shutil.which("smtp-sink") or not shutil.which("smtp-source"):
        sys.exit("needs Postfix's smtp-sink and smtp-source on PATH (apt-get install postfix)")
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(
        ["smtp-sink", *user, f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)
        yield port
    finally:
        sink.terminate()
        sink.wait()


def smtp_source_rate(port: int, count: int, sessions: int, size: int) -> float:
    """Messages per second `smtp-source` reaches: `count` messages of `size` bytes."""
    start = time.perf_counter()
    subprocess.run(
        ["smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-l", str(size),
         "-f", "newsletter@example.org", "-t", "leser@example.org", f"127.0.0.1:{port}"],
        check=True,
    )  # fmt: skip
    return count / (time.perf_counter() - start)
