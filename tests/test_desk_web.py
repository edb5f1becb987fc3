"""The desk in the browser (/desk/) over real HTTP with the real app: login with password and
TOTP, lockout, CSRF, cookies, roles, approval and proofs through the desk, the audit log."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import requests
import sqlalchemy as sa

from comms.core.config import load_config
from comms.db.approvals import Desk
from comms.db.desk_accounts import DeskAccounts
from comms.db.store import open_store
from comms.db.tables import desk_sessions
from comms.mail.tokens import make_token

from .databases import database_env
from .deskkit import (
    ISSUE,
    PASSWORD_RE,
    SECRET,
    DeskSite,
    Person,
    csrf,
    fetch,
    open_desk,
    serve,
)
from .ledgerkit import run_cli

# Every test logs in at least once (an argon2 check costs 64 MiB and a fair part of a second
# by design) and most read and render the sample site: each takes 1-10 s.
pytestmark = [pytest.mark.database, pytest.mark.slow]

VERSION_RE = re.compile(r'name="version" value="([0-9a-f]{64})"')
#: Words only a logged-in desk page shows (the list's headings, the issue, the audit log).
CONTENT = ("Newsletter-Ausgaben", "Protokoll", "Probeversand", ISSUE)


@pytest.fixture
def desk_site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    with open_desk(site_copy) as site:
        yield site


def log_in(site: DeskSite, person: Person, code: str | None = None) -> requests.Session:
    """A browser session logged in as `person` (with the TOTP code of now where needed)."""
    browser = requests.Session()
    form = browser.get(f"{site.base}/desk/login")
    assert form.status_code == 200 and 'type="password"' in form.text
    data = {"csrf_token": csrf(form.text), "name": person.name, "password": person.password}
    answer = browser.post(f"{site.base}/desk/login", data=data)
    assert answer.status_code == 200, answer.text
    if person.totp is not None:
        assert answer.url.endswith("/desk/code")
        data = {"csrf_token": csrf(answer.text), "code": code or pyotp.TOTP(person.totp).now()}
        answer = browser.post(f"{site.base}/desk/code", data=data)
        assert answer.status_code == 200, answer.text
    assert answer.url.endswith("/desk/")
    assert "Newsletter-Ausgaben" in answer.text
    return browser


def test_the_desk_is_off_unless_enabled(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    config = load_config(site_copy / "comms.toml")
    store = open_store(config)
    base, httpd = serve(config, store, desk=config.settings.desk.enabled)
    try:
        for path in ("/desk/", "/desk/login", "/desk/audit"):
            assert fetch("GET", base + path, allow_redirects=False).status_code == 404
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
        store.close()


def test_login_with_password_and_totp_and_logout(desk_site: DeskSite) -> None:
    anna = desk_site.add("Anna Admin", "admin")
    assert anna.totp is not None
    browser = requests.Session()
    assert browser.get(f"{desk_site.base}/desk/").url.endswith("/desk/login")
    page = browser.get(f"{desk_site.base}/desk/login")
    data = {"csrf_token": csrf(page.text), "name": anna.name, "password": anna.password}
    answer = browser.post(f"{desk_site.base}/desk/login", data=data)
    # The password alone opens nothing: the list waits for the code.
    assert answer.url.endswith("/desk/code")
    half = browser.get(f"{desk_site.base}/desk/", allow_redirects=False)
    assert half.status_code == 303 and not any(word in half.text for word in CONTENT)
    code = pyotp.TOTP(anna.totp).now()
    wrong = "000000" if code != "000000" else "111111"
    refused = browser.post(
        f"{desk_site.base}/desk/code", data={"csrf_token": csrf(answer.text), "code": wrong}
    )
    assert refused.status_code == 401
    answer = browser.post(
        f"{desk_site.base}/desk/code", data={"csrf_token": csrf(refused.text), "code": code}
    )
    assert answer.url.endswith("/desk/") and "Newsletter-Ausgaben" in answer.text
    assert browser.get(f"{desk_site.base}/desk/audit").status_code == 200
    # The cookie: its own name, HttpOnly, SameSite=Strict; no Secure on localhost only.
    cookie = next(c for c in browser.cookies if c.name == "comms-desk")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/desk/"
    browser.post(f"{desk_site.base}/desk/logout", data={"csrf_token": csrf(answer.text)})
    after = browser.get(f"{desk_site.base}/desk/audit", allow_redirects=False)
    assert after.status_code == 303 and after.headers["Location"] == "/desk/login"
    actions = [(who, what) for who, what, _s, _v in desk_site.audit()]
    assert ("Anna Admin", "login-failed") in actions
    assert actions[-2:] == [("Anna Admin", "login"), ("Anna Admin", "logout")]


def test_a_code_works_once(desk_site: DeskSite) -> None:
    paul = desk_site.add("Paul", "approver")
    assert paul.totp is not None
    code = pyotp.TOTP(paul.totp).now()
    log_in(desk_site, paul, code)
    browser = requests.Session()
    page = browser.get(f"{desk_site.base}/desk/login")
    data = {"csrf_token": csrf(page.text), "name": paul.name, "password": paul.password}
    answer = browser.post(f"{desk_site.base}/desk/login", data=data)
    again = browser.post(
        f"{desk_site.base}/desk/code", data={"csrf_token": csrf(answer.text), "code": code}
    )
    assert again.status_code == 401


def test_outside_localhost_the_cookie_is_host_only_and_secure(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    host = {"Host": "desk.example.org"}
    page = fetch("GET", f"{desk_site.base}/desk/login", headers=host)
    assert "Set-Cookie" not in page.headers  # the login page sets nothing
    data = {"csrf_token": csrf(page.text), "name": erika.name, "password": erika.password}
    answer = fetch(
        "POST", f"{desk_site.base}/desk/login", data=data, headers=host, allow_redirects=False
    )
    assert answer.status_code == 303
    set_cookie = answer.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-comms-desk=")
    for part in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert part in set_cookie
    assert "Domain" not in set_cookie
    csp = answer.headers["Content-Security-Policy"]
    # Scripts only the desk's own files: none inline, none from elsewhere.
    directives = dict(part.strip().partition(" ")[::2] for part in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'" and directives["script-src"] == "'self'"


def test_lockout_after_failed_logins(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = requests.Session()
    for _ in range(3):  # lockout_after = 3
        page = browser.get(f"{desk_site.base}/desk/login")
        data = {"csrf_token": csrf(page.text), "name": "Erika", "password": "wrong"}
        assert browser.post(f"{desk_site.base}/desk/login", data=data).status_code == 401
    page = browser.get(f"{desk_site.base}/desk/login")
    data = {"csrf_token": csrf(page.text), "name": "Erika", "password": erika.password}
    answer = browser.post(f"{desk_site.base}/desk/login", data=data)
    assert answer.status_code == 401  # the right password, but locked
    account = DeskAccounts(desk_site.store.engine, desk_site.store.secret).find("Erika")
    assert account is not None and account.locked_until is not None
    # `comms users reset` unlocks with a new password.
    code, out, err = run_cli(desk_site.root, "users", "reset", "Erika")
    assert code == 0, err
    found = PASSWORD_RE.search(out)
    assert found is not None
    log_in(desk_site, Person("Erika", found.group(1), None))


def test_logins_per_ip_are_limited(desk_site: DeskSite) -> None:
    limited = 0
    browser = requests.Session()
    token = csrf(browser.get(f"{desk_site.base}/desk/login").text)
    for n in range(25):  # login_limit = 20 per 15 minutes
        data = {"csrf_token": token, "name": f"nobody{n}", "password": "x"}
        limited += browser.post(f"{desk_site.base}/desk/login", data=data).status_code == 429
    assert limited == 5


def test_forms_without_the_csrf_token_are_refused(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    # The login form itself.
    answer = fetch(
        "POST",
        f"{desk_site.base}/desk/login",
        data={"name": erika.name, "password": erika.password},
    )
    assert answer.status_code == 400 and "comms-desk" not in answer.headers.get("Set-Cookie", "")
    browser = log_in(desk_site, erika)
    for token in ("", "forged"):
        refused = browser.post(
            f"{desk_site.base}/desk/issues/{ISSUE}/proof",
            data={"csrf_token": token, "edition": "de"},
        )
        assert refused.status_code == 400
    assert Desk(desk_site.store.engine).proofs(ISSUE) == []
    # A token from another login does not do either.
    other = log_in(desk_site, erika)
    theirs = csrf(other.get(f"{desk_site.base}/desk/").text)
    refused = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/proof", data={"csrf_token": theirs, "edition": "de"}
    )
    assert refused.status_code == 400


def test_a_login_sent_from_another_site_is_refused(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = requests.Session()
    form = browser.get(f"{desk_site.base}/desk/login")
    data = {"csrf_token": csrf(form.text), "name": erika.name, "password": erika.password}
    # A valid form token fetched by the attacker's server, posted by a visitor's browser from
    # the attacker's page: the visitor must not end up logged in as the attacker.
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example.org"}):
        refused = browser.post(f"{desk_site.base}/desk/login", data=data, headers=headers)
        assert refused.status_code == 403
        assert "comms-desk" not in refused.headers.get("Set-Cookie", "")
    assert log_in(desk_site, erika)


def test_a_failed_login_keeps_only_names_of_accounts(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = requests.Session()
    for name in (erika.name, "Sommer2026!geheim"):
        form = browser.get(f"{desk_site.base}/desk/login")
        data = {"csrf_token": csrf(form.text), "name": name, "password": "wrong password"}
        assert browser.post(f"{desk_site.base}/desk/login", data=data).status_code == 401
    failed = [who for who, what, _s, _v in desk_site.audit() if what == "login-failed"]
    # A password typed into the name field never reaches the log.
    assert failed == ["Erika", "?"]


def test_no_desk_page_shows_content_without_a_login(desk_site: DeskSite) -> None:
    paths = [
        "/desk/",
        "/desk",
        "/desk/audit",
        "/desk/code",
        f"/desk/issues/{ISSUE}/",
        "/desk/anything/else",
        "/desk/../desk/audit",
    ]
    for path in paths:
        for method in ("GET", "HEAD", "POST"):
            answer = fetch(method, desk_site.base + path, allow_redirects=False)
            assert answer.status_code in (303, 404, 405), (method, path, answer.status_code)
            assert not any(word in answer.text for word in CONTENT), (method, path)
            if answer.status_code == 303:
                assert answer.headers["Location"] in ("/desk/login", "/desk/")
    login = fetch("GET", desk_site.base + "/desk/", allow_redirects=True)
    assert login.url.endswith("/desk/login") and 'type="password"' in login.text


def test_a_subscribers_links_give_nothing_under_desk(desk_site: DeskSite) -> None:
    tokens = [make_token(SECRET, kind, "u-1") for kind in ("unsubscribe", "preferences")]
    for token in tokens:
        for path in (f"/desk/?token={token}", f"/desk/preferences/{token}", f"/desk/{token}"):
            answer = fetch("GET", desk_site.base + path, allow_redirects=False)
            assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login"
            # As the login cookie, a token is no login either.
            jar = {"comms-desk": token}
            answer = fetch("GET", desk_site.base + "/desk/", cookies=jar, allow_redirects=False)
            assert answer.status_code == 303 and not any(w in answer.text for w in CONTENT)


def test_an_editor_may_send_a_proof_but_not_approve(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    assert page.status_code == 200 and "Freigeben" not in page.text
    assert 'sandbox=""' in page.text and 'width="375"' in page.text
    version = VERSION_RE.search(page.text)
    assert version is None  # no approve form for an editor
    sent = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/proof",
        data={"csrf_token": csrf(page.text), "edition": "de"},
    )
    assert sent.status_code == 200 and "Probe" in sent.text
    proofs = Desk(desk_site.store.engine).proofs(ISSUE)
    assert [(p.recipient, p.sent_by) for p in proofs] == [("erika@example.org", "Erika")]
    refused = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/approve",
        data={"csrf_token": csrf(page.text), "version": "0" * 64},
    )
    assert refused.status_code == 403
    assert Desk(desk_site.store.engine).approvals(ISSUE) == []
    assert ("Erika", "proof", ISSUE) in [row[:3] for row in desk_site.audit()]


def test_an_approver_approves_through_the_desk(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    editor = log_in(desk_site, erika)
    page = editor.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    editor.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/proof",
        data={"csrf_token": csrf(page.text), "edition": "de"},
    )
    approver = log_in(desk_site, paul)
    page = approver.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    version = VERSION_RE.search(page.text)
    assert version is not None
    # A version other than the one shown is not approved (the file changed meanwhile).
    stale = approver.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/approve",
        data={"csrf_token": csrf(page.text), "version": "0" * 64},
    )
    assert stale.status_code == 409
    done = approver.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/approve",
        data={"csrf_token": csrf(page.text), "version": version.group(1)},
    )
    assert done.status_code == 200 and "Freigegeben" in done.text
    approvals = Desk(desk_site.store.engine).approvals(ISSUE)
    assert [(a.approved_by, a.digest) for a in approvals] == [("Paul", version.group(1))]
    assert ("Paul", "approve", ISSUE, version.group(1)) in desk_site.audit()
    # What `comms send` checks sees the approval.
    code, out, err = run_cli(desk_site.root, "status", ISSUE)
    assert code == 0, err
    assert "approved by Paul" in out


def test_the_last_author_may_not_approve(desk_site: DeskSite) -> None:
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    browser = log_in(desk_site, paul)
    page = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/proof",
        data={"csrf_token": csrf(page.text), "edition": "de"},
    )
    version = VERSION_RE.search(page.text)
    assert version is not None
    refused = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/approve",
        data={"csrf_token": csrf(page.text), "version": version.group(1)},
    )
    assert refused.status_code == 409 and "den letzten Probeversand" in refused.text
    assert Desk(desk_site.store.engine).approvals(ISSUE) == []


def test_logins_are_shared_by_two_servers(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    # A second `comms serve` on the same database knows the login.
    store = open_store(desk_site.config)
    base, httpd = serve(desk_site.config, store)
    try:
        jar = {"comms-desk": browser.cookies["comms-desk"]}
        answer = fetch("GET", base + "/desk/", cookies=jar)
        assert answer.status_code == 200 and "Newsletter-Ausgaben" in answer.text
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
        store.close()
    # Only a hash of the cookie is stored.
    with desk_site.store.engine.connect() as conn:
        ids = list(conn.execute(sa.select(desk_sessions.c.id)).scalars())
    assert browser.cookies["comms-desk"] not in ids and len(ids) == 1


def test_a_disabled_account_is_logged_out(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    code, _out, err = run_cli(desk_site.root, "users", "disable", "Erika")
    assert code == 0, err
    answer = browser.get(f"{desk_site.base}/desk/", allow_redirects=False)
    assert answer.status_code == 303
    code, out, _err = run_cli(desk_site.root, "users", "list")
    assert "Erika <->: editor, password only, disabled" in out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "enabled"), [("serve", True), ("desk", True), ("serve", False)]
)
def test_the_commands_serve_the_desk_only_when_enabled(
    site_copy: Path, command: str, enabled: bool
) -> None:
    env = {"COMMS_SECRET_KEY": SECRET} | ({"COMMS_DESK_ENABLED": "true"} if enabled else {})
    config_path = site_copy / "comms.toml"
    port = _free_port()
    extra = ["--no-scheduler"] if command == "serve" else []
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(config_path), command,
         "--port", str(port), *extra],
        env=os.environ | env | database_env(config_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert str(port) in process.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        answer = fetch("GET", base + "/desk/", allow_redirects=False)
        login = fetch("GET", base + "/desk/login")
        if enabled:
            assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login"
            assert 'type="password"' in login.text
        else:  # off by default: the desk does not exist
            assert answer.status_code == 404 and login.status_code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()


def test_comms_desk_refuses_while_the_desk_is_off(site_copy: Path) -> None:
    code, _out, err = run_cli(site_copy, "desk", "--port", "0")
    assert code == 1 and "[desk] enabled = true" in err


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Setup", "-c", "user.email=setup@example.org",
         *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def _edit_form(browser: requests.Session, base: str, path: str) -> tuple[str, str, str]:
    """The edit page's CSRF token, version digest and text."""
    page = browser.get(base + path)
    assert page.status_code == 200, page.text
    version = VERSION_RE.search(page.text)
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", page.text, re.S)
    assert version is not None and text is not None
    # As a browser reads it: the line end right after the tag is not part of the text.
    return csrf(page.text), version.group(1), html.unescape(text.group(1)).removeprefix("\n")


def test_a_save_is_a_commit_by_the_account_and_four_eyes_follow_it(desk_site: DeskSite) -> None:
    _git(desk_site.root, "init", "--quiet")
    _git(desk_site.root, "add", "content")
    _git(desk_site.root, "commit", "--quiet", "-m", "Start")
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    vera = desk_site.add("Vera", "approver", "vera@example.org")
    browser = log_in(desk_site, paul)
    path = f"/desk/edit/issue/{ISSUE}/raw"
    token, version, text = _edit_form(browser, desk_site.base, path)
    changed = text.replace("Wir freuen uns auf", "Wir freuen uns sehr auf", 1)
    assert changed != text
    saved = browser.post(
        desk_site.base + path, data={"csrf_token": token, "version": version, "text": changed}
    )
    assert saved.status_code == 200 and "Gespeichert." in saved.text
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    assert file.read_text(encoding="utf-8") == changed.replace("\r\n", "\n")
    log = _git(desk_site.root, "log", "-1", "--format=%an <%ae>", "--", str(file))
    assert log.strip() == "Paul <paul@example.org>"
    assert ("Paul", "save", f"issue/{ISSUE}") in [row[:3] for row in desk_site.audit()]
    # Paul changed it last: Paul may not approve it, Vera may.
    page = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    found = VERSION_RE.search(page.text)
    assert found is not None
    data = {"csrf_token": csrf(page.text), "version": found.group(1)}
    refused = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/approve", data=data)
    assert refused.status_code == 409 and "zuletzt geändert" in refused.text
    other = log_in(desk_site, vera)
    page = other.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    data = {"csrf_token": csrf(page.text), "version": found.group(1)}
    assert other.post(f"{desk_site.base}/desk/issues/{ISSUE}/approve", data=data).ok
    approvals = Desk(desk_site.store.engine).approvals(ISSUE)
    assert [a.approved_by for a in approvals] == ["Vera"]


def test_a_file_changed_since_loading_is_never_overwritten(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    path = f"/desk/edit/issue/{ISSUE}/raw"
    token, version, text = _edit_form(browser, desk_site.base, path)
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    theirs = text + "\nEin Absatz von jemand anderem.\n"
    file.write_text(theirs, encoding="utf-8")
    mine = text + "\nMein Absatz.\n"
    answer = browser.post(
        desk_site.base + path, data={"csrf_token": token, "version": version, "text": mine}
    )
    assert answer.status_code == 409 and "Mein Absatz." in answer.text
    assert file.read_text(encoding="utf-8") == theirs
    # Only the files `comms list` lists can be opened.
    for other in ("/desk/edit/issue/..%2F..%2Fcomms", "/desk/edit/config/comms"):
        assert browser.get(desk_site.base + other).status_code == 404


def test_public_pages_neither_set_nor_see_the_desk_cookie(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    cookie = next(c for c in browser.cookies if c.name == "comms-desk")
    assert cookie.path == "/desk/"  # never sent to the public pages on localhost
    public = browser.get(f"{desk_site.base}/subscribe")
    assert "Set-Cookie" not in public.headers
    desk = browser.get(f"{desk_site.base}/desk/")
    assert public.headers.get("Content-Security-Policy") != desk.headers["Content-Security-Policy"]
    assert desk.headers["Cache-Control"] == "no-store" and desk.headers["X-Frame-Options"] == "DENY"
