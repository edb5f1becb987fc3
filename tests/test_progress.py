"""Progress: `comms status ISSUE --watch` follows a send running in another process; `comms
worker` and `comms send` draw a progress bar with rate and time left only on a terminal."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .databases import database_env
from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, wait_for, with_subscribers
from .smtp_servers import Handler, free_port, smtp_server

pytestmark = [pytest.mark.database, pytest.mark.slow, pytest.mark.usefixtures("without_approval")]


def comms(root: Path, env: dict[str, str], *args: str, **options: object) -> subprocess.Popen[str]:
    """`comms ARGS` as a process on the site's database."""
    process: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), *args],
        env=os.environ | {"COMMS_SECRET_KEY": SECRET} | env | database_env(root / "comms.toml"),
        text=True,
        **options,  # type: ignore[call-overload]
    )
    return process


def test_status_watch_follows_a_send_in_another_process_until_it_is_done(
    site_copy: Path,
) -> None:
    with_subscribers(site_copy)
    handler = Handler()
    with smtp_server(handler) as port:
        env = {
            "COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}",
            "COMMS_DELIVERY_RATE": "2",  # 3 messages take over a second
            "COMMS_DELIVERY_CONCURRENCY": "1",
        }
        watch = comms(
            site_copy, env, "status", ISSUE, "--watch", "--interval", "0.2",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        send = comms(site_copy, env, "send", ISSUE, "--now", "--yes", stdout=subprocess.PIPE)
        assert send.wait(timeout=60) == 0
        out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    lines = out.splitlines()
    assert f"{ISSUE}: done, 3 of 3 settled (3 sent, 0 failed, 0 skipped, 0 waiting)" in lines
    # It followed the send as it went (or saw it start), then printed the whole status.
    assert lines.index(f"{ISSUE}: done, 3 recipient(s)") > 0
    assert "\x1b[" not in out + err  # no bar and no colours when nothing is a terminal


def test_status_watch_ends_with_exit_0_on_ctrl_c(site_copy: Path) -> None:
    code, _, err = run_cli(site_copy, "status")  # make the database
    assert code == 0, err
    watch = comms(
        site_copy, {}, "status", ISSUE, "--watch", "--interval", "0.2",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert watch.stdout is not None
    assert watch.stdout.readline() == f"{ISSUE}: not started; waiting for its send\n"
    watch.send_signal(signal.SIGINT)
    _, err = watch.communicate(timeout=20)
    assert watch.returncode == 0, err
    assert "Traceback" not in err


def test_the_worker_draws_a_progress_bar_only_on_a_terminal(site_copy: Path) -> None:
    with_subscribers(site_copy)
    # Nobody listens there: the run stops with every delivery due again at once.
    code, _, _ = run_cli(
        site_copy, "send", ISSUE, "--now", "--yes", "--transport",
        f"smtp://127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert code == 1
    handler = Handler()
    with smtp_server(handler) as port:
        env = {"COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}", "TERM": "xterm", "COLUMNS": "100"}
        leader, follower = pty.openpty()
        worker = comms(site_copy, env, "worker", "--once", stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        out, _ = worker.communicate(timeout=60)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the worker
                break
            if not chunk:
                break
            drawn += chunk
        os.close(leader)
    assert worker.returncode == 0
    # Its rounds are log lines on stderr (here the terminal, beside the bar), nothing on stdout.
    assert not out
    wait_for(lambda: len(handler.received) == 3)
    screen = drawn.decode("utf-8", "replace")
    assert f"comms.worker: {ISSUE}: 3 sent, 0 failed, 0 skipped, 0 waiting" in screen
    assert ISSUE in screen and "3/3" in screen and "msg/s" in screen
