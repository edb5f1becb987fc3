"""The desk in the browser for tests: the sample site with `[desk] enabled`, served over HTTP
on 127.0.0.1, accounts made with `comms users add`; Chromium and axe-core for the browser
tests (the `browser` fixture, which tests/conftest.py offers to every test)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from comms.audience.read_only import guard_engine
from comms.core.config import Config, load_config
from comms.db.store import Store, open_store
from comms.db.tables import desk_audit
from comms.sending.desk_office import Office
from comms.web.app import create_app
from comms.web.desk_pages import desk_blueprint

from .ledgerkit import run_cli

SECRET = "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
ISSUE = "2020-02-newsletter"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET_RE = re.compile(r"TOTP secret: ([A-Z2-7]+)")
PASSWORD_RE = re.compile(r"password: (\S+)")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
#: The rules axe-core checks every desk page against.
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Person:
    """A desk account as the tests log in with it."""

    name: str
    password: str
    totp: str | None


@dataclass
class DeskSite:
    """The sample site with the desk on, served over HTTP."""

    root: Path
    config: Config
    store: Store
    base: str

    def add(self, name: str, role: str, email: str = "") -> Person:
        """`comms users add NAME --role ROLE`: the account and its once-shown secrets."""
        extra = ["--email", email] if email else []
        code, out, err = run_cli(self.root, "users", "add", name, "--role", role, *extra)
        assert code == 0, err
        password = PASSWORD_RE.search(out)
        totp = SECRET_RE.search(out)
        assert password is not None
        return Person(name, password.group(1), totp.group(1) if totp else None)

    def audit(self) -> list[tuple[str, str, str, str | None]]:
        """The audit log, oldest first: (account, action, subject, version)."""
        a = desk_audit.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(a.account, a.action, a.subject, a.version).order_by(a.id))
            return [tuple(row) for row in rows]


def fetch(method: str, url: str, **options: Any) -> requests.Response:
    """One request without a session (no cookies kept)."""
    return requests.request(method, url, timeout=30, **options)


def csrf(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, html
    return found.group(1)


def serve(config: Config, store: Store, desk: bool = True) -> tuple[str, object]:
    blueprint = desk_blueprint(Office(config, store)) if desk else None
    # As under `comms serve` (its subscriber pages turn the guard on): GET and HEAD never write.
    guard_engine(store.engine)
    app = create_app(config.output_dir, config, desk=blueprint)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}", httpd


@contextmanager
def open_desk(root: Path) -> Iterator[DeskSite]:
    """The site in `root` with the desk on (3 failed logins lock), served on 127.0.0.1;
    COMMS_SECRET_KEY must be SECRET."""
    with (root / "comms.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n[desk]\nenabled = true\nlockout_after = 3\n")
    config = load_config(root / "comms.toml")
    store = open_store(config)
    base, httpd = serve(config, store)
    try:
        yield DeskSite(root, config, store, base)
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
        store.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def violations(page: Page) -> str:
    """axe-core's report of the page's WCAG 2 A/AA violations; empty when there are none."""
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
    return "" if results.violations_count == 0 else str(results.generate_report())
