"""Response headers (nosniff, CSP, no framing) and logs without tokens or addresses."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from comms.core.logs import configure_logging, redact
from comms.web.app import CSP

from .webkit import Web, open_web

ADDRESS = "erika.muster@example.org"
TOKEN = "Xk3v9QpZrT2mW8yB.Lq4sNd7hFj1cVb6xGz0pRt5wYe"


#: An SVG that would run script, opened on its own, on the origin of the desk.
SVG_WITH_SCRIPT = '<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/desk/")</script></svg>'


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    public = tmp_path / "public"
    (public / "events").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>x</title>", encoding="utf-8")
    (public / "style.css").write_text("body{}", encoding="utf-8")
    (public / "feed.json").write_text("{}", encoding="utf-8")
    (public / "logo.svg").write_text(SVG_WITH_SCRIPT, encoding="utf-8")
    with open_web(tmp_path) as kit:
        yield kit


#: Why these run on SQLite only.
HEADERS_ONLY = "HTTP headers and log lines: nothing here depends on the database"


@pytest.mark.sqlite_only(HEADERS_ONLY)
@pytest.mark.parametrize(
    "path", ["/", "/style.css", "/feed.json", "/subscribe", "/nix", "/healthz"]
)
def test_nosniff_on_every_response(web: Web, path: str) -> None:
    assert web.client.get(path).headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.sqlite_only(HEADERS_ONLY)
@pytest.mark.parametrize("path", ["/", "/subscribe", "/nix"])
def test_pages_have_a_csp_and_cannot_be_framed(web: Web, path: str) -> None:
    headers = web.client.get(path).headers
    if path == "/":  # the archive's; the subscriber pages keep their own, stricter one
        assert headers["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.sqlite_only(HEADERS_ONLY)
def test_an_svg_runs_no_script(web: Web) -> None:
    answer = web.client.get("/logo.svg")
    assert answer.mimetype == "image/svg+xml"
    policy = answer.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "script-src" not in policy


@pytest.mark.sqlite_only(HEADERS_ONLY)
def test_a_failing_request_logs_neither_token_nor_address(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(token: str) -> None:
        raise RuntimeError(f"database gone while reading {ADDRESS} for {token}")

    monkeypatch.setattr(web.subs, "profile", broken)
    configure_logging()
    stream = io.StringIO()
    handlers = logging.getLogger("comms").handlers
    old = [h.setStream(stream) for h in handlers if isinstance(h, logging.StreamHandler)]
    try:
        assert web.client.get(f"/preferences/{TOKEN}").status_code == 500
    finally:
        for handler, previous in zip(handlers, old, strict=False):
            if isinstance(handler, logging.StreamHandler) and previous is not None:
                handler.setStream(previous)
    logged = stream.getvalue()
    assert "RuntimeError" in logged and "/preferences/[token]" in logged
    assert "…@example.org" in logged
    assert TOKEN not in logged and TOKEN.split(".")[0] not in logged
    assert ADDRESS not in logged and "erika" not in logged


def test_redaction_keeps_ordinary_text() -> None:
    text = "sent 2020-02-newsletter to 3 of 4 via smtp.example.org (comms.sending.run, v1.2.3)"
    assert redact(text) == text
    assert redact(f"a <{ADDRESS}> b") == "a <…@example.org> b"


def test_redaction_covers_the_mailed_data_links() -> None:
    assert redact("GET /my-data/S93MafmmDZXPVIKa.v0.l0DKx HTTP/1.1") == (
        "GET /my-data/[token] HTTP/1.1"
    )
