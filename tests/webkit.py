"""A subscriber web app on a temporary SQLite file with an in-memory mail outbox, for tests."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from comms.audience.mailer import Mailer
from comms.audience.subscriptions import Subscriptions
from comms.core.config import Config, load_config
from comms.db.people import Subscriber
from comms.db.store import Store, open_store
from comms.mail.transports import SentMessage, memory_outbox
from comms.web.app import create_app

from .conftest import ROOT

SECRET = "web-test-secret-0123456789abcdef-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
H1_RE = re.compile(r"<h1>(.*?)</h1>", re.S)
CONFIRM_RE = re.compile(r"https://newsletter\.example\.org(/confirm/[A-Za-z0-9_.-]+)")
DATA_RE = re.compile(r"https://newsletter\.example\.org(/my-data/[A-Za-z0-9_.-]+)")
PREFS_RE = re.compile(r"https://newsletter\.example\.org(/preferences/[A-Za-z0-9_.-]+)")


def make_config(folder: Path, transport: str, **overrides: Any) -> Config:
    """The sample configuration with a database in `folder` and the given transport."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder / 'comms.db'}",
        "transport": transport,
        "output_dir": str(folder / "public"),
        **overrides,
    }
    return load_config(ROOT / "comms.toml", overrides=values, environ={"COMMS_SECRET_KEY": SECRET})


@dataclass
class Web:
    """Everything a web test needs: the app, its client, the store and the sent mail."""

    config: Config
    store: Store
    subs: Subscriptions
    mailer: Mailer
    app: Flask
    client: FlaskClient
    outbox: list[SentMessage]

    def mails(self) -> list[EmailMessage]:
        """Every mail sent so far, parsed (waits for the background mailer)."""
        self.mailer.join()
        parsed = []
        for sent in self.outbox:
            msg = BytesParser(policy=default).parsebytes(sent.data)
            assert isinstance(msg, EmailMessage)
            parsed.append(msg)
        return parsed

    def link_path(self, pattern: re.Pattern[str], index: int = -1) -> str:
        """The path of the first link matching `pattern` in a sent mail's plain text."""
        mail = self.mails()[index]
        text = mail.get_body(("plain",))
        assert text is not None
        found = pattern.search(text.get_content())
        assert found, text.get_content()
        return found.group(1)

    def confirm_path(self, index: int = -1) -> str:
        """The path of the confirmation link in a sent mail."""
        return self.link_path(CONFIRM_RE, index)

    def data_link(self, index: int = -1) -> str:
        """The path of a mailed export or erasure link."""
        return self.link_path(DATA_RE, index)

    def csrf(self, path: str = "/subscribe") -> str:
        """The CSRF token of the form at `path`."""
        found = CSRF_RE.search(self.client.get(path).get_data(as_text=True))
        assert found
        return found.group(1)

    def activate(self, email: str) -> Subscriber:
        """Sign `email` up and confirm it through the mailed link; the active subscriber."""
        assert self.sign_up(email).status_code == 200
        assert self.client.post(self.confirm_path()).status_code == 200
        person = self.store.find(email)
        assert person is not None and person.status == "active"
        return person

    def sign_up(self, email: str, **fields: Any) -> Any:
        """POST the sign-up form as a browser would, then wait for the background work."""
        data = {"email": email, "csrf_token": self.csrf(), **fields}
        response = self.client.post("/subscribe", data=data)
        self.mailer.join()
        return response


def h1(response: Any) -> str:
    """The page heading of a response."""
    found = H1_RE.search(response.get_data(as_text=True))
    assert found
    return str(found.group(1))


@contextmanager
def open_web(folder: Path, settle: float = 0.01, **overrides: Any) -> Iterator[Web]:
    """A fresh app on its own database and in-memory outbox (config overrides as keywords);
    deferred sign-ups wait `settle` seconds (the tests wait for them anyway)."""
    name = "web-" + secrets.token_hex(4)
    config = make_config(folder, f"memory://{name}", **overrides)
    store = open_store(config)
    mailer = Mailer(config, settle=settle)
    subs = Subscriptions(config, store, mailer)
    app = create_app(folder / "public", config, subs)
    try:
        yield Web(config, store, subs, mailer, app, app.test_client(), memory_outbox(name))
    finally:
        mailer.close()
        store.close()


@contextmanager
def served(app: Flask) -> Iterator[int]:
    """`app` over real HTTP on 127.0.0.1 (a threaded server); yields its port."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
