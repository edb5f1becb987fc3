"""Who may talk to the servers, and how (issue 21, findings 6 and the lows): `comms preview`
answers only its own loopback host (DNS rebinding) and sends a CSP; `comms serve` sends HSTS
over HTTPS and warns about proxy headers it does not trust; the webhook's secret, Basic user
and deeply nested bodies."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from comms.core.config import load_config
from comms.core.errors import ConfigError
from comms.web.preview import Preview

from .conftest import ROOT
from .databases import database_env
from .ledgerkit import run_cli
from .smtp_servers import free_port
from .webkit import SECRET, open_web, served

STRONG_HOOK = "hook-Vd9Kq2Lp7Wx4Nb8Ys1Tf6Hd3Jm5Gc0Zu-0123456789abcdef"


def get(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> http.client.HTTPResponse:
    """One request over HTTP with the given headers (`Host` among them); the read response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    given = headers or {}
    conn.putrequest(method, path, skip_host="Host" in given)
    for name, value in given.items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_preview_answers_only_its_own_host(site_copy: Path) -> None:
    with Preview(load_config(site_copy / "comms.toml")) as preview, served(preview.app) as port:
        preview.port = port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            assert get(port, "/_preview/", {"Host": host}).status == 200, host
        # A page on another site whose name resolves to 127.0.0.1 sends its own name.
        for host in (
            f"evil.example:{port}",
            "evil.example",
            f"127.0.0.1:{port + 1}",
            f"127.0.0.1.evil.example:{port}",
            "",
        ):
            for path in (
                "/_preview/",
                "/_preview/2020-04-newsletter/email.html",
                "/subscribe",
                "/",
            ):
                response = get(port, path, {"Host": host})
                assert response.status == 421, (host, path)


def test_preview_sends_a_csp_that_runs_only_its_own_script(site_copy: Path) -> None:
    with Preview(load_config(site_copy / "comms.toml")) as preview, served(preview.app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/_preview/2020-04-newsletter/")
        response = conn.getresponse()
        page = response.read()
        csp = response.getheader("Content-Security-Policy") or ""
        [script] = re.findall(rb"<script>(.*?)</script>", page, re.S)
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"script-src 'sha256-{digest}';" in csp
        assert "connect-src 'self'" in csp and "frame-ancestors 'self'" in csp
        conn.request("GET", "/_preview/2020-04-newsletter/email.html")
        email = conn.getresponse()
        email.read()
        assert "script-src 'none'" in (email.getheader("Content-Security-Policy") or "")
        conn.close()


@pytest.mark.database
def test_hsts_only_over_https(tmp_path: Path) -> None:
    with open_web(tmp_path) as web:
        secure = web.client.get("/subscribe", base_url="https://newsletter.example.org")
        assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
        plain = web.client.get("/subscribe")
        assert "Strict-Transport-Security" not in plain.headers


@contextmanager
def serving(site: Path, *options: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`comms serve` as a subprocess (web only) with `options`; yields (port, process)."""
    port = free_port()
    env = {"COMMS_SECRET_KEY": SECRET, "COMMS_SITE_BASE_URL": f"http://127.0.0.1:{port}"}
    code, out, err = run_cli(site, "build", env=env)
    assert code == 0, out + err
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(site / "comms.toml"), "serve",
         "--port", str(port), "--no-scheduler", *options],
        env=os.environ | env | database_env(site / "comms.toml"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Serving on ")
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


@pytest.mark.slow
@pytest.mark.database
def test_serve_sends_hsts_behind_a_trusted_https_proxy(site_copy: Path) -> None:
    with serving(site_copy, "--trusted-proxy", "127.0.0.1") as (port, _process):
        proxied = get(
            port, "/subscribe", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        )
        assert proxied.getheader("Strict-Transport-Security") == "max-age=31536000"
        assert get(port, "/").getheader("Strict-Transport-Security") is None


@pytest.mark.slow
@pytest.mark.database
def test_serve_warns_once_about_proxy_headers_it_does_not_trust(site_copy: Path) -> None:
    with serving(site_copy) as (port, process):
        assert get(port, "/").status == 200
        for address in ("203.0.113.9", "198.51.100.4"):
            assert get(port, "/", {"X-Forwarded-For": address}).status == 200
    assert process.stderr is not None
    err = process.stderr.read()
    assert err.count("no --trusted-proxy is set") == 1, err
    assert "203.0.113.9" not in err


def test_a_weak_webhook_secret_is_refused_at_load() -> None:
    environ = {"COMMS_SECRET_KEY": SECRET, "COMMS_BOUNCES_WEBHOOK_SECRET": "hook-secret"}
    with pytest.raises(ConfigError) as raised:
        load_config(ROOT / "comms.toml", environ=environ)
    assert any(
        p.startswith("environment COMMS_BOUNCES_WEBHOOK_SECRET: too weak")
        for p in raised.value.problems
    )
    environ["COMMS_BOUNCES_WEBHOOK_SECRET"] = STRONG_HOOK
    assert (
        load_config(ROOT / "comms.toml", environ=environ).settings.bounces.webhook_secret
        == STRONG_HOOK
    )


@pytest.mark.database
def test_webhook_checks_the_basic_user_and_refuses_deep_nesting(tmp_path: Path) -> None:
    from comms.bounces.webhooks import BrevoWebhook
    from comms.web.app import create_app

    with open_web(tmp_path, bounces={"webhook_secret": STRONG_HOOK}) as web:
        app = create_app(tmp_path / "public", web.config, None, BrevoWebhook(web.config, web.store))
        with served(app) as port:

            def post(authorization: str, body: bytes) -> int:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                headers = {"Authorization": authorization, "Content-Type": "application/json"}
                conn.request("POST", "/webhooks/brevo", body, headers)
                status = conn.getresponse().status
                conn.close()
                return status

            def basic(user: str) -> str:
                return "Basic " + base64.b64encode(f"{user}:{STRONG_HOOK}".encode()).decode()

            assert post(basic("brevo"), b"[]") == 400  # authenticated; no event in it
            assert post(basic("mallory"), b"[]") == 401
            assert post(basic(""), b"[]") == 401
            assert post(f"Bearer {STRONG_HOOK}", b"[" * 30_000) == 400
