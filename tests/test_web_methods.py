"""GET and HEAD never act (issue 21, finding 1): Flask answers HEAD through the GET view, and
`curl -I` on a mailed link once confirmed the sign-up, erased the person or emptied their
settings. Walked over real HTTP on every route of the app, with valid tokens."""

from __future__ import annotations

import http.client
import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, url_for

from comms.audience.read_only import WriteRefused, read_only
from comms.bounces.webhooks import BrevoWebhook
from comms.web.app import create_app
from comms.web.guard import acting, install_method_guard, proof_in_url

from .webkit import Web, open_web, served

HOOK_SECRET = "hook-0123456789abcdef-Vd9Kq2Lp7Wx4Nb8Ys1Tf6Hd3Jm5Gc0Zu"


def snapshot(engine: sa.Engine) -> dict[str, list[str]]:
    """Every row of every table, in a comparable form."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            for name, table in meta.tables.items()
        }


def ask(port: int, method: str, path: str) -> int:
    """One request as `curl -I` (HEAD) or a link scanner (GET) sends it; its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def links(web: Web) -> dict[str, list[str]]:
    """Valid tokens of every kind: a pending sign-up's and an active person's links, and
    open export and erasure links of the active person."""
    web.sign_up("pending@example.org")
    confirm_pending = web.confirm_path().rpartition("/")[2]
    active = web.activate("active@example.org")
    confirm_active = web.confirm_path().rpartition("/")[2]
    preferences = web.subs.preferences_token(active)
    page = f"/preferences/{preferences}"
    assert web.client.post(f"{page}/export", data={"csrf_token": web.csrf(page)}).status_code == 200
    export = web.data_link().rpartition("/")[2]
    data = {"csrf_token": web.csrf(page), "really": "yes"}
    assert web.client.post(f"{page}/delete", data=data).status_code == 200
    erase = web.data_link().rpartition("/")[2]
    return {
        "/confirm/": [confirm_pending, confirm_active],
        "/unsubscribe/": [web.subs.unsubscribe_token(active)],
        "/preferences/": [preferences],
        "/my-data/": [export, erase],
    }


def urls_of(app: Flask, tokens: dict[str, list[str]]) -> list[str]:
    """One URL per combination of valid values, for every route of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        choices: dict[str, list[str]] = {}
        for name in sorted(rule.arguments):
            if name == "token":
                prefix = next((p for p in tokens if rule.rule.startswith(p)), None)
                assert prefix is not None, f"the walk has no token for {rule.rule}"
                choices[name] = tokens[prefix]
            elif name == "action":
                choices[name] = ["export", "delete"]
            elif name == "path":
                choices[name] = ["index.html", "feed.xml", "missing/"]
            else:
                pytest.fail(f"the walk does not know how to fill <{name}> of {rule.rule}")
        for combination in itertools.product(*choices.values()):
            values: dict[str, Any] = dict(zip(choices, combination, strict=True))
            with app.test_request_context():
                path = url_for(rule.endpoint, **values)
            found.append(path)
    return found


@pytest.mark.database
@pytest.mark.slow
def test_no_get_or_head_on_any_route_changes_anything(tmp_path: Path) -> None:
    with open_web(tmp_path, bounces={"webhook_secret": HOOK_SECRET}) as web:
        (tmp_path / "public").mkdir(exist_ok=True)
        (tmp_path / "public" / "index.html").write_text("<h1>Archiv</h1>")
        tokens = links(web)
        app = create_app(
            tmp_path / "public", web.config, web.subs, BrevoWebhook(web.config, web.store)
        )
        paths = urls_of(app, tokens)
        assert any(p.startswith("/my-data/") for p in paths)
        assert "/webhooks/brevo" in paths and "/subscribe" in paths
        before, mails = snapshot(web.store.engine), len(web.mails())
        statuses: dict[str, int] = {}
        with served(app) as port:
            for path, method in itertools.product(paths, ["HEAD", "GET", "HEAD"]):
                statuses[f"{method} {path}"] = ask(port, method, path)
        web.mailer.join()
        assert snapshot(web.store.engine) == before
        assert len(web.mails()) == mails
        assert all(status < 500 for status in statuses.values()), statuses
        person = web.store.find("pending@example.org")
        assert person is not None and person.status == "pending"


@pytest.mark.database
@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_curl_head_on_a_mailed_link_does_nothing(tmp_path: Path, method: str) -> None:
    with open_web(tmp_path) as web:
        web.sign_up("scanned@example.org")
        confirm = web.confirm_path()
        active = web.activate("erase-me@example.org")
        page = f"/preferences/{web.subs.preferences_token(active)}"
        data = {"csrf_token": web.csrf(page), "really": "yes"}
        assert web.client.post(f"{page}/delete", data=data).status_code == 200
        erase = web.data_link()
        with served(web.app) as port:
            # `curl -I LINK`: the confirmation, the erasure link and the settings page.
            assert ask(port, method, confirm) == 200
            assert ask(port, method, erase) == 200
            assert ask(port, method, page) == 200
        pending = web.store.find("scanned@example.org")
        assert pending is not None and pending.status == "pending"
        kept = web.store.find("erase-me@example.org")
        assert kept is not None and kept.status == "active"
        # The button still does it.
        assert web.client.post(confirm).status_code == 200
        confirmed = web.store.find("scanned@example.org")
        assert confirmed is not None and confirmed.status == "active"


def test_a_view_registered_for_get_that_acts_is_refused(tmp_path: Path) -> None:
    # The guard is the one place: even a view registered for GET by mistake never acts.
    app = Flask("t")
    install_method_guard(app)
    done: list[str] = []

    @app.route("/act", methods=["GET", "POST"])
    @acting(proof_in_url("test"))
    def act() -> str:
        done.append("acted")
        return "ok"

    @app.post("/unmarked")
    def unmarked() -> str:
        done.append("unmarked")
        return "ok"

    client = app.test_client()
    assert client.head("/act").status_code == 405
    assert client.get("/act").status_code == 405
    assert client.post("/unmarked").status_code == 405
    assert client.options("/act").status_code == 200
    assert done == []
    assert client.post("/act").status_code == 200
    assert done == ["acted"]


@pytest.mark.database
def test_reads_only_inside_read_only(tmp_path: Path) -> None:
    with open_web(tmp_path) as web:
        engine: Any = web.store.engine
        web.sign_up("waiting@example.org")
        token = web.confirm_path().rpartition("/")[2]
        with read_only():
            assert web.store.find("nobody@example.org") is None
            with pytest.raises(WriteRefused):
                with engine.begin() as conn:
                    conn.execute(sa.text("DELETE FROM subscribers"))
            with pytest.raises(WriteRefused):
                web.subs.resend(token)
        assert len(web.mails()) == 1
