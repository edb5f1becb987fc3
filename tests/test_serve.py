"""`comms serve` over real HTTP, as a person and a mailbox provider use it: sign up, confirm
the mail that arrived at a real SMTP server, receive an issue, leave with RFC 8058 one-click."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from .databases import database_env
from .ledgerkit import run_cli
from .smtp_servers import Handler, free_port, smtp_server

pytestmark = pytest.mark.slow

ISSUE = "2020-02-newsletter"
ADDRESS = "leser@example.org"
SECRET = "serve-test-secret-0123456789-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"


class Forms(HTMLParser):
    """The forms of a page: action, method and every input's name and value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attr.get("action"), "method": attr.get("method"),
                               "fields": {}})  # fmt: skip
        elif tag == "input" and self.forms and attr.get("type") == "hidden":
            fields = self.forms[-1]["fields"]
            assert isinstance(fields, dict)
            fields[attr.get("name")] = attr.get("value") or ""


def forms(html: str) -> list[dict[str, object]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def wait_for_mail(handler: Handler, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 15
    while len(handler.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(handler.received) >= count, "no mail arrived"
    return [parse(r.data) for r in handler.received]


@pytest.fixture
def server(site_copy: Path) -> Iterator[tuple[str, Path, dict[str, str], Handler]]:
    """`comms serve` as a subprocess on 127.0.0.1, mail going to aiosmtpd."""
    handler = Handler()
    with smtp_server(handler) as smtp_port:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "COMMS_SECRET_KEY": SECRET,
            "COMMS_SITE_BASE_URL": base,
            "COMMS_TRANSPORT": f"smtp://127.0.0.1:{smtp_port}",
            "COMMS_DELIVERY_RETRY_BACKOFF_SECONDS": "0",
        }
        code, out, err = run_cli(site_copy, "build", env=env)
        assert code == 0, out + err
        process = subprocess.Popen(
            [sys.executable, "-m", "comms", "--config", str(site_copy / "comms.toml"), "serve",
             "--port", str(port), "--no-scheduler"],
            env=os.environ | env | database_env(site_copy / "comms.toml"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line == f"Serving on {base}/ (web only; Ctrl+C stops)\n", line
            yield base, site_copy, env, handler
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            assert process.stderr is not None
            assert "Traceback" not in process.stderr.read()


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_sign_up_confirm_receive_and_one_click_unsubscribe(
    server: tuple[str, Path, dict[str, str], Handler],
) -> None:
    base, site, env, handler = server
    health = requests.get(base + "/healthz", timeout=5).json()
    assert (health["status"], health["database"], health["problems"]) == ("ok", "ok", [])
    browser = requests.Session()
    page = browser.get(base + "/subscribe", timeout=5)
    assert page.status_code == 200
    [form] = forms(page.text)
    assert form["method"] == "post"
    # A cross-site POST is refused with a German page, not a 500.
    refused = requests.post(
        base + "/subscribe",
        data={"email": ADDRESS},
        headers={"Origin": "https://evil.example"},
        timeout=5,
    )
    assert refused.status_code == 400 and "von einer anderen Website gesendet" in refused.text
    fields = dict(form["fields"])  # type: ignore[call-overload]
    answer = browser.post(urljoin(page.url, str(form["action"])), data=fields | {"email": ADDRESS},
                          timeout=5)  # fmt: skip
    assert answer.status_code == 200 and "Bitte bestätigen Sie Ihr Abonnement" in answer.text

    [confirmation] = wait_for_mail(handler, 1)
    assert confirmation["From"].addresses[0].addr_spec == "bestaetigung@example.org"
    text = confirmation.get_body(("plain",))
    assert text is not None
    link = re.search(re.escape(base) + r"/confirm/\S+", text.get_content())
    assert link, text.get_content()
    landing = browser.get(link.group(0), timeout=5)  # what a link scanner sees: no change
    assert landing.status_code == 200
    [button] = forms(landing.text)
    done = browser.post(urljoin(landing.url, str(button["action"])), timeout=5)
    assert done.status_code == 200 and "Vielen Dank!" in done.text

    code, out, err = run_cli(site, "send", ISSUE, "--now", env=env)
    assert code == 0, out + err
    newsletters = [m for m in wait_for_mail(handler, 2) if m["List-Unsubscribe"]]
    [newsletter] = [m for m in newsletters if m["To"].addresses[0].addr_spec == ADDRESS]
    assert newsletter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Every link into the site that the mail carries is answered by `comms serve`.
    html = newsletter.get_body(("html",))
    assert html is not None
    own = sorted(set(re.findall(re.escape(base) + r'/[^"\s<>]*', html.get_content())))
    assert any("/unsubscribe/" in url for url in own) and any("/preferences/" in url for url in own)
    missing = [url for url in own if requests.get(url, timeout=5).status_code != 200]
    assert missing == []

    unsubscribe = re.fullmatch(r"<([^>]+)>", newsletter["List-Unsubscribe"])
    assert unsubscribe is not None
    # Exactly what a mailbox provider sends: no cookie, urlencoded body, no redirects followed.
    one_click = requests.post(unsubscribe.group(1), data={"List-Unsubscribe": "One-Click"},
                              allow_redirects=False, timeout=5)  # fmt: skip
    assert one_click.status_code == 200
    code, out, _ = run_cli(site, "subscribers", "show", ADDRESS, "--json", env=env)
    assert code == 0
    shown = json.loads(out)
    assert shown["status"] == "unsubscribed"
    assert [(e["action"], e["channel"]) for e in shown["consent"]] == [
        ("request", None), ("confirm", None), ("unsubscribe", "one-click"),
    ]  # fmt: skip


@pytest.mark.sqlite_only("the output folder's files and ETags; the database only has to open")
def test_output_folder_is_served_with_etags(
    server: tuple[str, Path, dict[str, str], Handler],
) -> None:
    base = server[0]
    first = requests.get(base + "/feed.xml", timeout=5)
    assert first.status_code == 200 and first.headers["ETag"]
    again = requests.get(base + "/feed.xml", headers={"If-None-Match": first.headers["ETag"]},
                         timeout=5)  # fmt: skip
    assert again.status_code == 304 and again.content == b""
