"""Database outages are waited out: a real PostgreSQL cluster of the test's own, stopped
(`pg_ctl stop -m immediate`) and started again while `comms worker` sends to aiosmtpd."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from .ledgerkit import run_cli
from .pgcluster import Cluster, cluster_fixture  # noqa: F401  (the fixture `cluster`)
from .schedkit import SECRET, wait_for
from .smtp_servers import free_port, smtp_server
from .test_signals import ISSUE, PEOPLE, SlowServer

pytestmark = [
    pytest.mark.postgresql_only("the outage is a database server that stops and starts again"),
    pytest.mark.slow,
]

#: Long enough that an outage of a few seconds stays well inside it: no row may change hands.
LEASE = 60
#: How long the database stays away.
OUTAGE = 4.0


def _campaign_waiting(root: Path, url: str) -> None:
    """Subscribers imported and the campaign started; nobody listens at the transport, so
    every row is queued for a worker."""
    env = {"COMMS_DATABASE_URL": url}
    rows = "".join(f"leser{n}@example.org\n" for n in range(PEOPLE))
    (root / "people.csv").write_text("email\n" + rows, encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "Testliste", env=env,
    )  # fmt: skip
    assert code == 0, err
    nobody = f"smtp://127.0.0.1:{free_port()}"
    code, _, err = run_cli(root, "send", ISSUE, "--now", "--transport", nobody, env=env)
    assert code == 1 and "cannot reach the mail server" in err, err


#: `comms worker --once`, and `comms send` resuming the campaign: both exit 0 when all is sent.
WORKER = ("worker", "--once")
SEND = ("send", ISSUE, "--now")


def _worker(
    root: Path, url: str, smtp_port: int, args: tuple[str, ...] = WORKER
) -> subprocess.Popen[str]:
    env = os.environ | {
        "COMMS_SECRET_KEY": SECRET,
        "COMMS_DATABASE_URL": url,
        "COMMS_TRANSPORT": f"smtp://127.0.0.1:{smtp_port}",
        "COMMS_DELIVERY_CONCURRENCY": "2",
        "COMMS_DELIVERY_LEASE_SECONDS": str(LEASE),
    }
    command = [sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _everyone_once(server: SlowServer, root: Path, url: str) -> None:
    got = Counter(r.rcpt_tos[0] for r in server.received)
    assert set(got) == {f"leser{n}@example.org" for n in range(PEOPLE)}, "someone got nothing"
    duplicates = {address: n for address, n in got.items() if n > 1}
    assert not duplicates, f"sent twice: {duplicates}"
    code, out, err = run_cli(root, "status", ISSUE, env={"COMMS_DATABASE_URL": url})
    assert code == 0, err
    assert f"  sent       {PEOPLE:>7}" in out.splitlines(), out


def _one_outage_logged(err: str) -> None:
    """One line as the outage begins and one as it ends, whatever the threads did meanwhile."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    began = [line for line in lines if "the database does not answer" in line]
    ended = [line for line in lines if "the database answers again" in line]
    assert len(began) == 1 and len(ended) == 1, err


@pytest.mark.usefixtures("without_approval")
def test_a_worker_waits_out_an_outage_mid_send_without_a_duplicate(
    site_copy: Path, cluster: Cluster
) -> None:
    url = cluster.url()
    _campaign_waiting(site_copy, url)
    server = SlowServer()
    with smtp_server(server) as port:
        worker = _worker(site_copy, url, port)
        wait_for(lambda: len(server.received) >= 20 or worker.poll() is not None, 60)
        assert worker.poll() is None, worker.communicate()
        cluster.stop()
        at_stop = len(server.received)
        time.sleep(OUTAGE)
        assert worker.poll() is None, "the worker gave up during the outage"
        cluster.start()
        out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, out + err
    assert at_stop < PEOPLE, "the send was over before the outage"
    _everyone_once(server, site_copy, url)
    _one_outage_logged(err)


@pytest.mark.usefixtures("without_approval")
@pytest.mark.parametrize("args", [WORKER, SEND], ids=["worker", "send"])
def test_a_sender_started_during_an_outage_says_it_waits_for_the_database(
    site_copy: Path, cluster: Cluster, args: tuple[str, ...]
) -> None:
    url = cluster.url()
    _campaign_waiting(site_copy, url)
    cluster.stop()
    server = SlowServer()
    with smtp_server(server) as port:
        worker = _worker(site_copy, url, port, args)
        stderr = worker.stderr
        assert stderr is not None
        said: list[str] = []
        reader = threading.Thread(target=lambda: said.extend(iter(stderr.readline, "")))
        reader.start()
        wait_for(lambda: any("the database does not answer" in line for line in said), 60)
        assert worker.poll() is None, "the worker gave up waiting for the database"
        cluster.start()
        worker.wait(timeout=120)  # stderr is the reader's; the output is short
        reader.join()
        assert worker.stdout is not None
        out = worker.stdout.read()
    err = "".join(said)
    assert worker.returncode == 0, out + err
    _everyone_once(server, site_copy, url)
    _one_outage_logged(err)
