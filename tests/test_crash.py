"""Crash safety: SIGKILL `comms send` mid-run, run it again, count what each address got."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from .databases import database_env
from .ledgerkit import run_cli
from .smtp_servers import Handler, smtp_server

pytestmark = [pytest.mark.database, pytest.mark.slow]

ISSUE = "2020-02-newsletter"
PEOPLE = 400
CONCURRENCY = 4


class SlowHandler(Handler):
    """Takes 10 ms per message, so that the kill lands in the middle of the run."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def _send(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"COMMS_SECRET_KEY": "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"}
    env |= database_env(root / "comms.toml")
    command = [
        sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), "send", ISSUE, "--now",
        "--transport", f"smtp://127.0.0.1:{port}", "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.usefixtures("without_approval")
# With PIPELINING a connection reads the reply to a message's "." only after the next
# message's commands went out: the kill must still find at most one message per connection
# sent and unrecorded.
@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelining"])
def test_kill_mid_run_then_rerun_loses_nothing_and_duplicates_at_most_in_flight(
    site_copy: Path, pipelining: bool
) -> None:
    rows = "".join(f"leser{n}@example.org\n" for n in range(PEOPLE))
    (site_copy / "people.csv").write_text("email\n" + rows, encoding="utf-8")
    code, _, err = run_cli(
        site_copy, "subscribers", "import", str(site_copy / "people.csv"), "--confirmed",
        "--consent-note", "Testliste",
    )  # fmt: skip
    assert code == 0, err
    handler = SlowHandler(pipelining=pipelining)
    with smtp_server(handler) as port:
        first = _send(site_copy, port)
        deadline = time.monotonic() + 60
        while len(handler.received) < PEOPLE // 4 and first.poll() is None:
            assert time.monotonic() < deadline, "the first run never got going"
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = len(handler.received)
        assert first.returncode == -signal.SIGKILL
        assert at_kill < PEOPLE, "the run finished before it could be killed"
        left = json.loads(run_cli(site_copy, "status", ISSUE, "--json")[1])["counts"]
        assert left["sent"] < PEOPLE and left["queued"] + left["sending"] > 0
        second = _send(site_copy, port)
        output, errors = second.communicate(timeout=120)
        assert second.returncode == 0, (output + errors).decode()
    got = Counter(r.rcpt_tos[0] for r in handler.received)
    expected = {f"leser{n}@example.org" for n in range(PEOPLE)}
    assert set(got) == expected, "someone got nothing"
    duplicates = sum(n - 1 for n in got.values())
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicates, at most {CONCURRENCY} allowed"
    print(f"killed after {at_kill} received; {left}; duplicates after the rerun: {duplicates}")
    if left["sending"]:
        assert f"took over {left['sending']} delivery(ies)" in output.decode()
    final = json.loads(run_cli(site_copy, "status", ISSUE, "--json")[1])["counts"]
    assert final["sent"] == PEOPLE
