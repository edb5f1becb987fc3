"""`comms serve` with its scheduler as a process: an issue due seconds ahead reaches aiosmtpd."""

from __future__ import annotations

import calendar
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
from typing import Any

import pytest

from .databases import database_env
from .ledgerkit import run_cli
from .schedkit import BERLIN, ISSUE, SECRET, set_front_matter, wait_for, with_subscribers
from .smtp_servers import Handler, free_port, smtp_server
from .test_digests import event_file

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


def test_serve_composes_a_digest_at_its_time(site_copy: Path) -> None:
    """The scheduler runs on the wall clock (never `reference_date`): a weekly digest on
    today's weekday, composed at the next whole minute, is written by a real `comms serve`."""
    env = {"COMMS_SECRET_KEY": SECRET}
    now = datetime.now(BERLIN)
    # A whole minute 15 to 75 s ahead: the server is up before it, even on a loaded machine.
    at = (now + timedelta(seconds=15)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    weekday = calendar.day_name[at.weekday()]
    (site_copy / "content" / "digests" / "woche.md").write_text(
        f'---\ntitle: "Wochentermine"\nkinds: [events]\nhorizon: 2 weeks\n'
        f"cadence: weekly on {weekday}\ncompose_at: '{at:%H:%M}'\n"
        f'subject: "Termine – {{date}}"\npreheader: "Die Woche"\n---\nHallo.\n',
        encoding="utf-8",
    )
    for n in (3, 5):
        day = at.date() + timedelta(days=n)
        event = site_copy / "content" / "events" / f"{day}-treffen-{n}.md"
        event.write_text(event_file("landesweit", f"{day} 10:00", f"Treffen {n}"), "utf-8")
    issue = site_copy / "content" / "issues" / f"{at.date()}-woche.md"
    job = f"digest:woche@{at.date()}"
    code, out, err = run_cli(site_copy, "schedule", env=env)
    assert code == 0, err
    assert f"{at:%H:%M} Uhr  compose digest „Wochentermine“ (woche)" in out
    code, out, err = run_cli(site_copy, "schedule", "--json", env=env)
    assert code == 0, err
    assert job in {j["id"] for j in json.loads(out)["jobs"]}
    with serve(site_copy, env) as (first, _):
        assert "(with the scheduler; Ctrl+C stops)" in first
        assert not issue.exists()
        wait_for(issue.exists, timeout=(at - now).total_seconds() + 60)
        assert datetime.now(BERLIN) >= at

        def jobs() -> dict[str, Any]:
            code, out, err = run_cli(site_copy, "schedule", "--json", env=env)
            assert code == 0, err
            data: dict[str, Any] = json.loads(out)
            return data

        # Composed once; the listener syncs after the run and plans the next week's run.
        following = f"digest:woche@{at.date() + timedelta(days=7)}"
        wait_for(lambda: following in {j["id"] for j in jobs()["jobs"]})
        data = jobs()
        assert data["scheduler"] is not None  # the serve process holds the lease
        assert job not in {j["id"] for j in data["jobs"]}
    text = issue.read_text("utf-8")
    assert "from_digest: woche\n" in text
    assert f"- {at.date() + timedelta(days=3)}-treffen-3\n" in text
