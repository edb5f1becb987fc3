"""Several workers on one PostgreSQL database: real `comms send` processes, one SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO

import pytest
import requests
import sqlalchemy as sa

from comms.core.config import load_config
from comms.db.store import open_store

from .ledgerkit import run_cli
from .schedkit import SECRET
from .smtp_servers import Handler, free_port, smtp_server
from .test_crash import SlowHandler

pytestmark = [
    pytest.mark.postgresql_only("several hosts share a database server; SQLite is one host's file"),
    pytest.mark.slow,
]

ISSUE = "2020-02-newsletter"
PEOPLE = 400
CONCURRENCY = 3
#: The shortest lease the settings allow: a dead worker's rows come free this long after it died.
LEASE = 10
#: Seconds to wait for something that takes a few beats: a guard against hanging, no bound on
#: speed (a loaded machine may take long; bench/multihost.py and bench/follow.py measure).
HANG = 120


def _env(url: str) -> dict[str, str]:
    return os.environ | {
        "COMMS_SECRET_KEY": SECRET,
        "COMMS_DATABASE_URL": url,
        "COMMS_DELIVERY_LEASE_SECONDS": str(LEASE),
        # Small claims, so that both workers hold rows when one is killed.
        "COMMS_DELIVERY_BATCH_SIZE": "40",
    }


def _worker(root: Path, url: str, port: int, host: str) -> subprocess.Popen[bytes]:
    """`comms send ISSUE` as a worker on host `host`: its own UTS namespace when root, so its
    claims carry another host name and are taken over only after their lease (else the same
    host name, and a dead worker's process id is noticed at once)."""
    command = [
        sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), "send", ISSUE, "--now",
        "--transport", f"smtp://127.0.0.1:{port}", "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip
    if os.geteuid() == 0:
        command = ["unshare", "-u", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
    return subprocess.Popen(command, env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _import(root: Path, url: str, people: int = PEOPLE) -> None:
    rows = "".join(f"leser{n}@example.org\n" for n in range(people))
    (root / "people.csv").write_text("email\n" + rows, encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "Testliste", env={"COMMS_DATABASE_URL": url},
    )  # fmt: skip
    assert code == 0, err


def _everyone() -> set[str]:
    return {f"leser{n}@example.org" for n in range(PEOPLE)}


@pytest.mark.usefixtures("without_approval")
def test_two_workers_started_at_once_share_one_campaign(site_copy: Path, pg_url: str) -> None:
    """No IntegrityError on `campaigns`: both find the one campaign; each address gets one."""
    _import(site_copy, pg_url)
    handler = SlowHandler()
    with smtp_server(handler) as port:
        workers = [_worker(site_copy, pg_url, port, f"worker-{n}") for n in "ab"]
        results = [w.communicate(timeout=120) for w in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, (out + err).decode()
    got = Counter(r.rcpt_tos[0] for r in handler.received)
    assert set(got) == _everyone() and set(got.values()) == {1}
    status = json.loads(run_cli(site_copy, "status", ISSUE, "--json", env=_pg(pg_url))[1])
    assert status["counts"]["sent"] == PEOPLE


def _pg(url: str) -> dict[str, str]:
    return {"COMMS_DATABASE_URL": url}


@pytest.mark.usefixtures("without_approval")
def test_a_worker_killed_mid_send_is_taken_over_by_the_survivor(
    site_copy: Path, pg_url: str
) -> None:
    """Two hosts share a campaign; one dies: the survivor waits out its lease and finishes."""
    _import(site_copy, pg_url)
    handler = SlowHandler()
    with smtp_server(handler) as port:
        doomed = _worker(site_copy, pg_url, port, "worker-a")
        survivor = _worker(site_copy, pg_url, port, "worker-b")
        deadline = time.monotonic() + 60
        # Killed once a quarter has gone out and it holds rows of its own (under load it may
        # start late: killed before its first claim, there would be nothing to take over).
        watch = sa.create_engine(pg_url)
        while len(handler.received) < PEOPLE // 4 or not _claims_held(watch, doomed.pid):
            if doomed.poll() is not None:
                pytest.fail(f"worker-a ended by itself (exit {doomed.returncode}) before the kill")
            assert time.monotonic() < deadline, "the workers never got going"
            time.sleep(0.005)
        watch.dispose()
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed_at = time.monotonic()
        assert doomed.returncode == -signal.SIGKILL
        out, err = survivor.communicate(timeout=120)
        waited = time.monotonic() - killed_at
        assert survivor.returncode == 0, (out + err).decode()
    got = Counter(r.rcpt_tos[0] for r in handler.received)
    assert set(got) == _everyone(), "someone got nothing"
    duplicates = sum(n - 1 for n in got.values())
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicates, at most {CONCURRENCY} in flight"
    status = json.loads(run_cli(site_copy, "status", ISSUE, "--json", env=_pg(pg_url))[1])
    assert status["counts"]["sent"] == PEOPLE
    assert "took over" in out.decode(), out.decode()
    print(f"survivor finished {waited:.1f} s after the kill; {duplicates} duplicate(s)")


def test_hosts_starting_at_once_migrate_a_fresh_database_once(tmp_path: Path, pg_url: str) -> None:
    """Every process migrates on open; on PostgreSQL an advisory lock lets one do it."""
    errors: list[BaseException] = []

    def start(n: int) -> None:
        try:
            root = tmp_path / str(n)
            root.mkdir()
            (root / "comms.toml").write_text("", encoding="utf-8")
            # Hosts that share a database share its key (docs/operations.md).
            environ = {"COMMS_SECRET_KEY": SECRET}
            config = load_config(root / "comms.toml", {"database_url": pg_url}, environ=environ)
            open_store(config).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "migrations deadlocked"
    assert errors == []


def _serve(
    root: Path, url: str, host: str, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """`comms serve` on host `host` (own UTS namespace when root), with `extra` environment
    variables; the process and its port."""
    port = free_port()
    command = [
        sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), "serve",
        "--port", str(port),
    ]  # fmt: skip
    if os.geteuid() == 0:
        command = ["unshare", "-u", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
    env = _env(url) | {"COMMS_SUBSCRIBE_RATE_LIMIT": "3", "COMMS_SCHEDULE_LEASE_SECONDS": "10"}
    env |= extra or {}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("Serving on"), process.stderr
    return process, port


def _claims_held(engine: sa.Engine, pid: int) -> int:
    """How many deliveries the process `pid` (on any host) holds claimed right now."""
    with engine.connect() as conn:
        held = conn.execute(
            sa.text(
                "SELECT count(*) FROM deliveries"
                " WHERE status = 'sending' AND claimed_by LIKE :owner"
            ),
            {"owner": f"%:{pid}:%"},
        ).scalar_one()
    return int(held)


def _scheduler_pid(url: str) -> int | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        owner = conn.execute(sa.text("SELECT owner FROM scheduler_lease")).scalar()
    engine.dispose()
    return int(owner.split(":")[1]) if owner else None


def test_two_servers_share_the_sign_up_limit_and_the_scheduler(
    site_copy: Path, pg_url: str
) -> None:
    """Sign-ups from one address over both servers hit the limit once in total; when the
    scheduler's server is killed, the other takes the scheduler over within the lease."""
    first, port_a = _serve(site_copy, pg_url, "serve-a")
    second, port_b = _serve(site_copy, pg_url, "serve-b")
    try:
        assert _scheduler_pid(pg_url) == first.pid
        codes = [
            requests.post(
                f"http://127.0.0.1:{port}/subscribe",
                data={"email": f"leser{n}@example.org"},
                timeout=10,
            ).status_code
            for n, port in enumerate([port_a, port_b] * 3)
        ]
        assert codes == [200, 200, 200, 429, 429, 429]
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed = time.monotonic()
        while _scheduler_pid(pg_url) != second.pid:
            assert time.monotonic() - killed < HANG, "nobody took the scheduler over"
            time.sleep(0.2)
        print(f"the scheduler moved after {time.monotonic() - killed:.1f} s")
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    assert second.returncode == 0
    assert second.stderr is not None
    errors = second.stderr.read()
    assert "took over the scheduler" in errors and "Traceback" not in errors


def _stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@pytest.mark.usefixtures("without_approval")
@pytest.mark.parametrize("sender", ["scheduler", "standby"])
def test_each_server_serves_an_issue_sent_on_the_other_host_within_a_beat(
    site_copy: Path, pg_url: str, sender: str
) -> None:
    """Each server has its own output folder; `comms send` rebuilds the sending host's one, and
    the other server's next beat rebuilds its own: the same feed, byte for byte. Both ways:
    the web-only server follows the scheduler's host, and the scheduler's host follows a send
    started beside the web-only one."""
    _import(site_copy, pg_url, 3)
    out = {n: site_copy / f"public-{n}" for n in "ab"}
    first, port_a = _serve(site_copy, pg_url, "serve-a", {"COMMS_OUTPUT_DIR": str(out["a"])})
    second, port_b = _serve(site_copy, pg_url, "serve-b", {"COMMS_OUTPUT_DIR": str(out["b"])})
    urls = {n: f"http://127.0.0.1:{port}" for n, port in (("a", port_a), ("b", port_b))}
    here, there = ("a", "b") if sender == "scheduler" else ("b", "a")
    follower = second if there == "b" else first
    page = f"/issues/{ISSUE}/"
    log = _Stderr(follower)
    try:
        assert _scheduler_pid(pg_url) == first.pid
        assert requests.get(urls[there] + page, timeout=30).status_code == 404
        started = time.monotonic()
        while not log.saw("output rebuilt"):  # the first beat
            assert time.monotonic() - started < HANG, "the other server never followed"
            time.sleep(0.1)
        with smtp_server(Handler()) as port:
            code, _, err = run_cli(
                site_copy, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}",
                env=_pg(pg_url) | {"COMMS_OUTPUT_DIR": str(out[here])},
            )  # fmt: skip
        assert code == 0, err
        sent = time.monotonic()
        feed = requests.get(urls[here] + "/feed.xml", timeout=10).content
        assert page.encode() in feed, "the sending host rebuilt its folder"
        # A beat is a quarter of the 10 s lease: it takes two beats and a build (printed below;
        # bench/follow.py measures a beat), HANG only guards against waiting forever.
        while requests.get(urls[there] + page, timeout=10).status_code != 200:
            assert time.monotonic() - sent < HANG, "the other server never rebuilt"
            time.sleep(0.2)
        print(f"the other server served the issue {time.monotonic() - sent:.1f} s after the send")
        assert requests.get(urls[there] + "/feed.xml", timeout=10).content == feed
        assert _scheduler_pid(pg_url) == first.pid
    finally:
        _stop(first, second)
    assert follower.returncode == 0
    errors = log.text()
    assert f"(issues now public: {ISSUE})" in errors and "Traceback" not in errors


class _Stderr:
    """What a process writes to stderr, read line by line by a thread as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def saw(self, text: str) -> bool:
        """Whether a line so far contains `text`."""
        return any(text in line for line in self.lines)

    def text(self) -> str:
        """Everything, once the process has ended."""
        self._thread.join(10)
        return "".join(self.lines)
