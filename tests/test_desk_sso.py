"""Single sign-on to the desk over OpenID Connect against a real provider: node-oidc-provider
(npm, tests/oidc_provider.mjs) as a node process on 127.0.0.1, the desk over real HTTP.

What it checks: the code flow with PKCE logs an account in with its own role and no TOTP; the
state, nonce, signature, issuer and audience are checked; nobody without an enabled desk
account and a verified address gets in."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import RSAKey

from comms.core.keys import Purpose, timed_signer
from comms.core.settings import DeskOidc
from comms.db.tables import desk_sessions
from comms.web.desk_sso import Provider, SignOnError

from .deskkit import SECRET, csrf, open_desk
from .ledgerkit import run_cli
from .oidckit import CLIENT_ID, CLIENT_SECRET, SsoDesk, sso_desk_on

ACTION_RE = re.compile(r'<form[^>]*action="([^"]+)"')
PROMPT_RE = re.compile(r'name="prompt" value="(\w+)"')

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sqlite_only("the sign-on's storage is the desk's logins, tested on both"),
]


@pytest.fixture
def sso_desk(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SsoDesk]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with sso_desk_on(site_copy, monkeypatch) as desk:
        yield desk


def to_callback(browser: requests.Session, desk: SsoDesk, login: str) -> str:
    """Start the sign-on on the desk and log in at the provider as `login`: the URL the
    provider sends the browser back to (not yet followed)."""
    answer = browser.get(f"{desk.site.base}/desk/sso/start", allow_redirects=False)
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    for _ in range(20):
        if location.startswith(f"{desk.site.base}/desk/sso/callback"):
            return location
        answer = browser.get(location, allow_redirects=False)
        if answer.status_code == 200:  # one of the provider's forms: log in, then consent
            prompt = PROMPT_RE.search(answer.text)
            action = ACTION_RE.search(answer.text)
            assert prompt and action, answer.text
            data = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                data |= {"login": login, "password": "any"}
            target = action.group(1)
            target = desk.issuer + target if target.startswith("/") else target
            answer = browser.post(target, data=data, allow_redirects=False)
        assert answer.status_code in (302, 303), answer.text
        location = answer.headers["Location"]
        if location.startswith("/"):
            location = desk.issuer + location
    raise AssertionError("the provider never sent the browser back")


def sign_on(desk: SsoDesk, login: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    back = browser.get(to_callback(browser, desk, login), allow_redirects=False)
    return browser, back


def add(desk: SsoDesk, name: str, role: str, email: str) -> None:
    code, _out, err = run_cli(
        desk.site.root, "users", "add", name, "--role", role, "--email", email
    )
    assert code == 0, err


def test_sign_on_logs_the_account_in_with_its_own_role(sso_desk: SsoDesk) -> None:
    add(sso_desk, "Anna Admin", "admin", "anna@example.org")
    login_page = requests.get(f"{sso_desk.site.base}/desk/login", timeout=30)
    assert 'href="/desk/sso/start"' in login_page.text
    browser = requests.Session()
    # Half a password login (the code still due) in the same browser ends with the sign-on.
    code, out, _err = run_cli(sso_desk.site.root, "users", "reset", "Anna Admin")
    password = out.split("password: ")[1].split()[0]
    form = browser.get(f"{sso_desk.site.base}/desk/login")
    data = {"csrf_token": csrf(form.text), "name": "Anna Admin", "password": password}
    assert browser.post(f"{sso_desk.site.base}/desk/login", data=data).url.endswith("/code")
    back = browser.get(to_callback(browser, sso_desk, "anna"), allow_redirects=False)
    # A page that goes on by itself (a redirect would lose the SameSite=Strict cookie).
    assert back.status_code == 200 and 'http-equiv="refresh"' in back.text
    assert {c.name for c in browser.cookies} >= {"comms-desk"}
    assert "comms-desk-sso" not in {c.name for c in browser.cookies}
    # No TOTP code after the provider's login; the role is the desk account's (admin).
    desk = browser.get(f"{sso_desk.site.base}/desk/", allow_redirects=False)
    assert desk.status_code == 200 and "Newsletter-Ausgaben" in desk.text
    assert browser.get(f"{sso_desk.site.base}/desk/audit").status_code == 200
    entries = [(who, what) for who, what, _s, _v in sso_desk.site.audit()]
    assert entries[-1] == ("Anna Admin", "login")
    with sso_desk.site.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(desk_sessions)).scalar() == 1
    # The role stays the account's: an editor signing on is an editor.
    add(sso_desk, "Dora Editor", "editor", "dora@example.org")
    dora, _back = sign_on(sso_desk, "dora")
    assert dora.get(f"{sso_desk.site.base}/desk/").status_code == 200
    assert dora.get(f"{sso_desk.site.base}/desk/audit").status_code == 403


@pytest.mark.parametrize(
    "login, why",
    [
        ("mallory", "no desk account has her address"),
        ("erin", "the provider has not verified the address"),
        ("dora", "the desk account is disabled"),
    ],
)
def test_sign_on_lets_nobody_in_without_an_enabled_account(
    sso_desk: SsoDesk, login: str, why: str
) -> None:
    add(sso_desk, "Erin Editor", "editor", "erin@example.org")
    add(sso_desk, "Dora Editor", "editor", "dora@example.org")
    assert run_cli(sso_desk.site.root, "users", "disable", "Dora Editor")[0] == 0
    browser, back = sign_on(sso_desk, login)
    assert back.status_code == 401, why
    answer = browser.get(f"{sso_desk.site.base}/desk/", allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login", why
    assert sso_desk.site.audit()[-1][1] == "login-failed"


def test_a_callback_needs_the_state_of_a_sign_on_started_in_this_browser(
    sso_desk: SsoDesk,
) -> None:
    add(sso_desk, "Anna Admin", "admin", "anna@example.org")
    browser = requests.Session()
    url = urlsplit(to_callback(browser, sso_desk, "anna"))
    query = parse_qs(url.query)
    query["state"] = ["forged-state"]
    forged = urlunsplit(url._replace(query=urlencode(query, doseq=True)))
    assert browser.get(forged, allow_redirects=False).status_code == 401
    # Another browser (an attacker handing a victim their own code) has no flow at all.
    stranger = requests.Session()
    stolen = to_callback(requests.Session(), sso_desk, "anna")
    assert stranger.get(stolen, allow_redirects=False).status_code == 401
    assert stranger.get(f"{sso_desk.site.base}/desk/", allow_redirects=False).status_code == 303


def test_the_id_token_is_verified(sso_desk: SsoDesk) -> None:
    settings = DeskOidc(issuer=sso_desk.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    provider = Provider(settings)
    browser = requests.Session()
    callback = to_callback(browser, sso_desk, "anna")
    signed = timed_signer(SECRET, Purpose.DESK_SSO).unsign(browser.cookies["comms-desk-sso"])
    flow = json.loads(base64.urlsafe_b64decode(signed))
    token = provider.client(f"{sso_desk.site.base}/desk/sso/callback").fetch_token(
        provider.metadata()["token_endpoint"],
        grant_type="authorization_code",
        code=parse_qs(urlsplit(callback).query)["code"][0],
        code_verifier=flow["verifier"],
    )
    claims = provider.id_token(dict(token), flow["nonce"])
    assert claims["sub"] == "anna" and claims["aud"] == CLIENT_ID
    with pytest.raises(SignOnError, match="nonce"):
        provider.id_token(dict(token), "another-nonce")
    other = Provider(DeskOidc(issuer=sso_desk.issuer, client_id="someone-else"))
    with pytest.raises(SignOnError, match="aud"):
        other.id_token(dict(token), flow["nonce"])
    # Signed by a key that is not the provider's.
    forged = jwt.encode(
        {"alg": "RS256", "kid": "forged"},
        {**claims, "sub": "mallory"},
        RSAKey.generate_key(2048),
    )
    with pytest.raises(SignOnError):
        provider.id_token({**dict(token), "id_token": forged}, flow["nonce"])
    # A provider that calls itself by another name is not the configured one.
    localhost = sso_desk.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(SignOnError, match="calls itself"):
        Provider(DeskOidc(issuer=localhost, client_id=CLIENT_ID)).metadata()


def test_without_an_issuer_there_is_no_sign_on(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with open_desk(site_copy) as site:
        login = requests.get(f"{site.base}/desk/login", timeout=30)
        assert login.status_code == 200 and 'type="password"' in login.text
        assert "/desk/sso/start" not in login.text
        start = requests.get(f"{site.base}/desk/sso/start", allow_redirects=False, timeout=30)
        assert start.status_code == 303 and start.headers["Location"] == "/desk/login"
