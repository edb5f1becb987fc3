"""SIGTERM and SIGINT to real `comms send`, `comms worker` and `comms serve` processes mid-send:
the message in flight is recorded, every other claim goes back at once, exit 0 or 3."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from .databases import database_env
from .ledgerkit import run_cli
from .schedkit import BERLIN, SECRET, set_front_matter, wait_for
from .smtp_servers import Handler, free_port, smtp_server

pytestmark = [pytest.mark.database, pytest.mark.slow]

ISSUE = "2020-02-newsletter"
PEOPLE = 120
#: Messages the server has taken when the signal comes: the run is well under way by then.
AT_SIGNAL = 10


class SlowServer(Handler):
    """Takes 50 ms per message: a signal lands with messages in flight and most still to go."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def _import(root: Path) -> None:
    rows = "".join(f"leser{n}@example.org\n" for n in range(PEOPLE))
    (root / "people.csv").write_text("email\n" + rows, encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "Testliste",
    )  # fmt: skip
    assert code == 0, err


def _comms(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = os.environ | {"COMMS_SECRET_KEY": SECRET, "COMMS_DELIVERY_CONCURRENCY": "2"}
    environ |= database_env(root / "comms.toml") | (env or {})
    command = [sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), *args]
    return subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _counts(root: Path) -> dict[str, int]:
    code, out, err = run_cli(root, "status", ISSUE, "--json")
    assert code == 0, err
    counts: dict[str, int] = json.loads(out)["counts"]
    return counts


def _signal_mid_send(process: subprocess.Popen[str], server: Handler, number: int) -> None:
    wait_for(lambda: len(server.received) >= AT_SIGNAL or process.poll() is not None, 60)
    assert process.poll() is None, process.communicate()
    process.send_signal(number)


def _check_handed_back(root: Path, server: Handler) -> None:
    """No row left `sending`; every message the server took is recorded as sent."""
    counts = _counts(root)
    assert counts["sending"] == 0, counts
    assert counts["sent"] == len(server.received) < PEOPLE, counts
    assert counts["queued"] == PEOPLE - counts["sent"]


def _resume_without_duplicates(root: Path, server: Handler, port: int) -> None:
    """Run again: everyone gets the issue, nobody twice (a clean stop duplicates nothing)."""
    again = _comms(root, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    got = Counter(r.rcpt_tos[0] for r in server.received)
    assert set(got) == {f"leser{n}@example.org" for n in range(PEOPLE)}
    assert set(got.values()) == {1}, "a clean stop must not cause a duplicate"


@pytest.mark.usefixtures("without_approval")
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_comms_send_records_the_message_in_flight_and_hands_back_the_rest(
    site_copy: Path, number: int
) -> None:
    _import(site_copy)
    server = SlowServer()
    with smtp_server(server) as port:
        send = _comms(site_copy, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}")
        _signal_mid_send(send, server, number)
        out, err = send.communicate(timeout=60)
        assert send.returncode == 3, out + err
        assert "Traceback" not in err
        _check_handed_back(site_copy, server)
        waiting = PEOPLE - len(server.received)
        assert (
            f"interrupted: the messages in flight were recorded, {waiting} delivery(ies) "
            f"handed back; run `comms send {ISSUE}` again to resume\n"
        ) in out
        _resume_without_duplicates(site_copy, server, port)


@pytest.mark.usefixtures("without_approval")
def test_sigterm_to_comms_worker_hands_back_its_claims_and_exits_3(site_copy: Path) -> None:
    _import(site_copy)
    # The campaign starts, but nobody listens at the transport: every row stays queued.
    nobody = f"smtp://127.0.0.1:{free_port()}"
    code, _, err = run_cli(site_copy, "send", ISSUE, "--now", "--transport", nobody)
    assert code == 1 and "cannot reach the mail server" in err, err
    server = SlowServer()
    with smtp_server(server) as port:
        env = {"COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}"}
        worker = _comms(site_copy, "worker", "--interval", "0.5", env=env)
        _signal_mid_send(worker, server, signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 3, out + err
        assert "Traceback" not in err
        _check_handed_back(site_copy, server)
        waiting = PEOPLE - len(server.received)
        # The worker reports as log lines on stderr (comms.core.logs: time, level, process).
        assert err.endswith(f"worker: stopped by SIGTERM; handed back: {waiting} of {ISSUE}\n")
        _resume_without_duplicates(site_copy, server, port)


def test_sigterm_to_an_idle_worker_exits_0(site_copy: Path) -> None:
    worker = _comms(site_copy, "worker", "--interval", "0.5")
    assert worker.stderr is not None
    first = worker.stderr.readline()
    assert first.endswith("comms.worker: worker: looking for due deliveries every 0.5 s\n"), first
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, out + err
    assert out == "" and err.endswith("comms.worker: worker: stopped by SIGTERM\n"), err


@pytest.mark.usefixtures("without_approval")
def test_sigterm_to_comms_serve_hands_back_the_scheduled_send(site_copy: Path) -> None:
    _import(site_copy)
    due = datetime.now(BERLIN) - timedelta(minutes=1)  # missed by a minute: runs at the start
    issue = site_copy / "content" / "issues" / f"{ISSUE}.md"
    set_front_matter(issue, "send_at", f"{due:%Y-%m-%d %H:%M:%S}")
    server = SlowServer()
    with smtp_server(server) as port:
        env = {"COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}"}
        serve = _comms(site_copy, "serve", "--port", str(free_port()), env=env)
        _signal_mid_send(serve, server, signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
        # The scheduler's retry pass resumes the send: for `comms serve` that is no failure.
        assert serve.returncode == 0, out + err
        assert "Traceback" not in err
        assert f"send of {ISSUE} interrupted by the shutdown" in err
        _check_handed_back(site_copy, server)


def test_a_command_leaves_the_signal_handlers_as_it_found_them(site_copy: Path) -> None:
    """Run inside a longer-lived process (the tests, a caller of `main`), a command does not
    keep SIGTERM from ending that process afterwards."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    code, out, err = run_cli(site_copy, "worker", "--once")
    assert code == 0, out + err
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
