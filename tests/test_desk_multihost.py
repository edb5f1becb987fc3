"""The desk on several hosts (docs/operations.md, "Several hosts"): two real `comms serve`
processes on one database and one content folder share logins and content, and a save on one
never overwrites a save on the other."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from comms.content.source_files import Conflict, read_source, save_source

from .databases import database_env
from .deskkit import CSRF_RE, ISSUE, PASSWORD_RE, SECRET
from .ledgerkit import run_cli

VERSION_RE = re.compile(r'name="version" value="([0-9a-f]{64})"')
TEXT_RE = re.compile(r"<textarea[^>]*>(.*?)</textarea>", re.S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_hosts(site_copy: Path) -> Iterator[tuple[str, str]]:
    """Two `comms serve` (hosts A and B) on the site's database and content folder."""
    with (site_copy / "comms.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n[desk]\nenabled = true\n")
    config_path = site_copy / "comms.toml"
    env = os.environ | {"COMMS_SECRET_KEY": SECRET} | database_env(config_path)
    processes, bases = [], []
    try:
        for _host in ("a", "b"):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "comms", "--config", str(config_path), "serve",
                 "--port", str(port), "--no-scheduler"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            processes.append(process)
            assert process.stdout is not None
            assert str(port) in process.stdout.readline()
            bases.append(f"http://127.0.0.1:{port}")
        yield bases[0], bases[1]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            assert process.stderr is not None
            assert "Traceback" not in process.stderr.read()


def _csrf(text: str) -> str:
    found = CSRF_RE.search(text)
    assert found, text
    return found.group(1)


def _edit_form(browser: requests.Session, url: str) -> tuple[str, str, str]:
    page = browser.get(url)
    assert page.status_code == 200, page.text
    version, text = VERSION_RE.search(page.text), TEXT_RE.search(page.text)
    assert version is not None and text is not None
    return _csrf(page.text), version.group(1), html.unescape(text.group(1)).removeprefix("\n")


@pytest.mark.database
@pytest.mark.slow
def test_two_hosts_share_logins_and_content(site_copy: Path, two_hosts: tuple[str, str]) -> None:
    host_a, host_b = two_hosts
    code, out, err = run_cli(site_copy, "users", "add", "Erika", "--role", "editor")
    assert code == 0, err
    password = PASSWORD_RE.search(out)
    assert password is not None
    # Log in on host A.
    browser = requests.Session()
    form = browser.get(f"{host_a}/desk/login")
    data = {"csrf_token": _csrf(form.text), "name": "Erika", "password": password.group(1)}
    assert browser.post(f"{host_a}/desk/login", data=data).url.endswith("/desk/")
    # The login works on host B (the cookie is the same: 127.0.0.1, path /desk/).
    on_b = browser.get(f"{host_b}/desk/", allow_redirects=False)
    assert on_b.status_code == 200 and "Newsletter-Ausgaben" in on_b.text
    # Save on host A; host B shows the new content.
    path = f"/desk/edit/issue/{ISSUE}/raw"
    token, version, text = _edit_form(browser, host_a + path)
    _token_b, stale_version, _text_b = _edit_form(browser, host_b + path)
    changed = text.rstrip("\n") + "\n\nNeu auf Host A.\n"
    saved = browser.post(
        host_a + path, data={"csrf_token": token, "version": version, "text": changed}
    )
    assert saved.status_code == 200 and saved.url.endswith("?done=save"), saved.text
    _token, new_version, shown = _edit_form(browser, host_b + path)
    assert "Neu auf Host A" in shown and new_version != version
    # Host B's page from before the save is stale: its save is refused, not an overwrite.
    refused = browser.post(
        host_b + path,
        data={"csrf_token": token, "version": stale_version, "text": text + "\nB\n"},
    )
    assert refused.status_code == 409
    assert "Neu auf Host A" in _edit_form(browser, host_a + path)[2]
    # Logging out on B ends the login on A too.
    browser.post(f"{host_b}/desk/logout", data={"csrf_token": token})
    assert browser.get(f"{host_a}/desk/", allow_redirects=False).status_code == 303


HOLDER = """
import fcntl, os, sys
path = sys.argv[1]
with open(path, "r+b") as held:
    fcntl.lockf(held, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    with open(path + ".new", "wb") as new:
        new.write(b"saved on the other host\\n")
    os.replace(path + ".new", path)
"""


def test_a_save_waits_for_another_hosts_save_of_the_same_file(tmp_path: Path) -> None:
    # The other host's save holds the file's lock while it writes; a save started meanwhile
    # with the version both had loaded must end in Conflict once it gets the lock.
    path = tmp_path / "issue.md"
    path.write_text("the version both loaded\n", encoding="utf-8")
    seen = read_source(path).digest
    other = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert other.stdout is not None and other.stdin is not None
    assert other.stdout.readline().strip() == "locked"
    outcome: list[BaseException | str] = []

    def save() -> None:
        try:
            outcome.append(save_source(path, "saved on this host\n", seen))
        except Conflict as exc:
            outcome.append(exc)

    saving = threading.Thread(target=save)
    saving.start()
    saving.join(timeout=1)  # without the lock, the save would be done by now
    other.stdin.write("go\n")
    other.stdin.close()
    assert other.wait(timeout=30) == 0
    saving.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    assert path.read_text(encoding="utf-8") == "saved on the other host\n"
