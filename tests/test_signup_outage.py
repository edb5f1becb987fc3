"""Sign-ups are never lost in a database outage (issue 23, item 3): the form answers 503 with
"Bitte in einer Minute erneut versuchen", `Retry-After` and the visitor's values kept, instead
of a 500; a sign-up already answered waits in the background for the database to return.
The database is made unreachable for real: the SQLite file replaced by a folder."""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

from comms.audience import subscriptions
from comms.audience.subscriptions import SignUp, Visitor

from .webkit import Web, open_web, served

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: On PostgreSQL an outage would be a stopped server; the test cluster is shared by the run.
pytestmark = [
    pytest.mark.database,
    pytest.mark.sqlite_only("the outage is the SQLite file made impossible to open"),
]


@contextmanager
def database_gone(web: Web, folder: Path) -> Iterator[None]:
    """The database file cannot be opened (a folder in its place) until the block ends."""
    web.store.engine.dispose()
    database = folder / "comms.db"
    kept = [(path, folder / f"away-{path.name}") for path in folder.glob("comms.db*")]
    for path, away in kept:
        path.rename(away)
    database.mkdir()
    try:
        yield
    finally:
        database.rmdir()
        for path, away in kept:
            away.rename(path)
        web.store.engine.dispose()


def post(port: int, fields: dict[str, str]) -> tuple[int, str | None, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/subscribe", urlencode(fields), FORM)
        response = conn.getresponse()
        return response.status, response.getheader("Retry-After"), response.read().decode()
    finally:
        conn.close()


@pytest.mark.slow
def test_a_sign_up_during_an_outage_keeps_the_form_and_asks_to_retry(tmp_path: Path) -> None:
    fields = {"email": "ausfall@example.org", "name": "Erika Ausfall", "topics": "arbeit"}
    with open_web(tmp_path) as web, served(web.app) as port:
        with database_gone(web, tmp_path):
            status, retry_after, page = post(port, fields)
        assert status == 503 and retry_after == "60"
        assert "Bitte in einer Minute erneut versuchen" in page
        assert 'value="ausfall@example.org"' in page and 'value="Erika Ausfall"' in page
        assert 'value="arbeit" checked' in page
        # A minute later, the same form goes through.
        assert post(port, fields)[0] == 200
        assert len(web.mails()) == 1
        person = web.store.find("ausfall@example.org")
    assert person is not None and person.status == "pending"


def test_a_sign_up_answered_just_before_an_outage_waits_for_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(subscriptions, "OUTAGE_RETRIES", (0.3,) * 20)
    caplog.set_level(logging.WARNING, "comms.subscriptions")
    with open_web(tmp_path) as web:
        with database_gone(web, tmp_path):
            web.subs.request_later(SignUp("spaet@example.org"), Visitor("test"))
            deadline = time.monotonic() + 20
            while "sign-up waits for the database" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
        web.mailer.join()
        person = web.store.find("spaet@example.org")
        assert person is not None and person.status == "pending"
        assert len(web.mails()) == 1
    assert "not recorded" not in caplog.text
