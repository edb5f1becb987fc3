"""`comms serve` with its scheduler as a process: an issue due seconds ahead reaches aiosmtpd."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from .databases import database_env
from .ledgerkit import run_cli
from .schedkit import BERLIN, ISSUE, SECRET, set_front_matter, wait_for, with_subscribers
from .smtp_servers import Handler, free_port, smtp_server

pytestmark = [pytest.mark.database, pytest.mark.slow]


@contextmanager
def serve(root: Path, env: dict[str, str], *args: str) -> Iterator[tuple[str, int]]:
    """`comms serve` as a subprocess; yields its first line and port; SIGTERM at the end."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), "serve",
         "--port", str(port), *args],
        env=os.environ | env | database_env(root / "comms.toml"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield process.stdout.readline(), port
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        assert process.stderr is not None
        errors = process.stderr.read()
        assert code == 0, errors
        assert "Traceback" not in errors


@pytest.mark.usefixtures("without_approval")
def test_serve_sends_a_scheduled_issue_when_it_is_due(site_copy: Path) -> None:
    env = {"COMMS_SECRET_KEY": SECRET, "COMMS_DELIVERY_RETRY_BACKOFF_SECONDS": "0"}
    with_subscribers(site_copy)
    # Far enough ahead that both servers are up before it is due, even on a loaded machine.
    due = (datetime.now(BERLIN) + timedelta(seconds=15)).replace(microsecond=0)
    issue = site_copy / "content" / "issues" / f"{ISSUE}.md"
    set_front_matter(issue, "send_at", f"{due:%Y-%m-%d %H:%M:%S}")
    handler = Handler()
    with smtp_server(handler) as smtp_port:
        env["COMMS_TRANSPORT"] = f"smtp://127.0.0.1:{smtp_port}"
        with serve(site_copy, env) as (first, port):
            assert (
                first == f"Serving on http://127.0.0.1:{port}/ (with the scheduler; Ctrl+C stops)\n"
            )
            with serve(site_copy, env) as (second, other):
                assert re.fullmatch(
                    rf"Serving on http://127\.0\.0\.1:{other}/ \(web only: another process "
                    r"\([^ ]+:\d+:[0-9a-f]{8}\) runs the scheduler on this database; "
                    r"Ctrl\+C stops\)\n",
                    second,
                ), second
            assert handler.received == []
            wait_for(lambda: len(handler.received) == 3, timeout=30)
            arrived = datetime.now(BERLIN)
        code, out, _ = run_cli(site_copy, "schedule", env=env)
    assert due <= arrived
    assert out.startswith("Scheduler: not running")  # the lease went with the process
    subjects = {
        message_from_bytes(r.data, policy=policy.default)["Subject"] for r in handler.received
    }
    assert subjects == {"Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis"}
    code, out, _ = run_cli(site_copy, "status", ISSUE, "--json", env=env)
    assert json.loads(out)["counts"]["sent"] == 3


@pytest.mark.usefixtures("without_approval")
def test_sigterm_during_a_scheduled_send_finishes_the_message_in_flight(site_copy: Path) -> None:
    env = {
        "COMMS_SECRET_KEY": SECRET,
        "COMMS_DELIVERY_RATE": "2",  # 3 messages take over a second
        "COMMS_DELIVERY_CONCURRENCY": "1",
    }
    with_subscribers(site_copy)
    due = datetime.now(BERLIN) - timedelta(minutes=1)  # missed by a minute: runs at the start
    issue = site_copy / "content" / "issues" / f"{ISSUE}.md"
    set_front_matter(issue, "send_at", f"{due:%Y-%m-%d %H:%M:%S}")
    handler = Handler()
    with smtp_server(handler) as smtp_port:
        env["COMMS_TRANSPORT"] = f"smtp://127.0.0.1:{smtp_port}"
        with serve(site_copy, env) as (first, _):
            assert "(with the scheduler; Ctrl+C stops)" in first
            wait_for(lambda: len(handler.received) >= 1)
        arrived = len(handler.received)
    code, out, _ = run_cli(site_copy, "status", ISSUE, "--json", env=env)
    counts = json.loads(out)["counts"]
    assert counts["sending"] == 0  # every claim went back
    assert counts["sent"] == arrived < 3
    assert counts["queued"] == 3 - arrived
