"""The desk's sending pages over real HTTP with the real app: send now and schedule, each
confirmed on a second page (issue, version, recipients per edition), refused with the send
rules' reason; the mails arrive at a real SMTP server; a campaign's progress per edition; the
held and refused scheduled sends; the reports; a desk send under `comms serve` stopped by
SIGTERM or killed, then resumed without a second mail to anyone; the audit log of each step."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import requests
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.core.config import load_config
from comms.db.incidents import record_problem
from comms.db.store import open_store
from comms.db.tables import deliveries
from comms.schedule.plan import hold

from .databases import database_env
from .deskkit import ISSUE, SECRET, DeskSite, Person, csrf, open_desk
from .ledgerkit import run_cli
from .smtp_servers import Handler, free_port, smtp_server

# Every test logs in (argon2 by design) and renders the sample issue in four editions.
pytestmark = [pytest.mark.database, pytest.mark.slow]

VERSION_RE = re.compile(r'name="version" value="([0-9a-f]{64})"')
#: Three confirmed subscribers: two read German, one Leichte Sprache.
PEOPLE = (
    "email,name,language,topics,regions\n"
    "anna@example.org,Anna,de,,\n"
    "bernd@example.org,Bernd,de,,\n"
    "lena@example.org,Lena,de-x-ls,,\n"
)
ADDRESSES = ["anna@example.org", "bernd@example.org", "lena@example.org"]
FAST = {"COMMS_DELIVERY_RETRY_BACKOFF_SECONDS": "0"}


def import_people(root: Path) -> None:
    (root / "people.csv").write_text(PEOPLE, encoding="utf-8")
    code, _out, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "Testliste",
    )  # fmt: skip
    assert code == 0, err


def approve(root: Path, by: str = "Vera") -> None:
    code, out, err = run_cli(root, "approve", ISSUE, "--by", by)
    assert code == 0, out + err


def log_in(site: DeskSite, person: Person) -> requests.Session:
    """A browser session logged in as `person` (password, then the TOTP code if it has one)."""
    return log_in_at(site.base, person)


def log_in_at(base: str, person: Person) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base}/desk/login")
    data = {"csrf_token": csrf(form.text), "name": person.name, "password": person.password}
    answer = browser.post(f"{base}/desk/login", data=data)
    if person.totp is not None:
        data = {"csrf_token": csrf(answer.text), "code": pyotp.TOTP(person.totp).now()}
        answer = browser.post(f"{base}/desk/code", data=data)
    assert answer.url.endswith("/desk/"), answer.text
    return browser


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def desk_site(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, handler: Handler
) -> Iterator[DeskSite]:
    """The sample site with three subscribers, the desk on, and a real SMTP server as its
    transport."""
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    with smtp_server(handler) as port:
        monkeypatch.setenv("COMMS_TRANSPORT", f"smtp://127.0.0.1:{port}")
        import_people(site_copy)
        with open_desk(site_copy) as site:
            yield site


def settle(browser: requests.Session, url: str, word: str) -> str:
    """The status page once it shows `word` (the send runs in the server's thread)."""
    for _ in range(300):
        page = browser.get(url)
        assert page.status_code == 200, page.text
        if word in page.text:
            return page.text
        time.sleep(0.1)
    raise AssertionError(f"the status page never showed {word!r}: {page.text}")


def _stops_reloading(browser: requests.Session, url: str) -> bool:
    """Whether the status page at `url` comes without a Refresh header within 30 s."""
    for _ in range(300):
        if "Refresh" not in browser.get(url).headers:
            return True
        time.sleep(0.1)
    return False


def test_send_now_is_confirmed_then_sent_through_smtp(
    desk_site: DeskSite, handler: Handler
) -> None:
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    approve(desk_site.root)
    browser = log_in(desk_site, paul)
    issue = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    assert "Jetzt senden …" in issue.text and 'type="time"' in issue.text
    asked = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send", data={"csrf_token": csrf(issue.text)}
    )
    assert asked.status_code == 200, asked.text
    # The confirmation names the issue, its version and the recipients per edition.
    text = asked.text
    assert "Versand bestätigen" in text and f"({ISSUE})" in text
    found = VERSION_RE.search(text)
    assert found is not None
    version = found.group(1)
    assert f"<code>{version[:12]}</code>" in text
    assert re.search(r"<dt>Empfänger</dt><dd>3</dd>", text)
    assert re.search(r'<th scope="row">Deutsch</th><td>2</td>', text)
    assert re.search(r'<th scope="row">Leichte Sprache</th><td>1</td>', text)
    assert handler.received == []  # asking sends nothing
    # A version other than the confirmed one is refused with the reason.
    stale = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send/confirm",
        data={"csrf_token": csrf(text), "version": "0" * 64},
    )
    assert stale.status_code == 409 and "changed since the confirmation page" in stale.text
    assert desk_site.store.ledger.campaign(ISSUE) is None
    sent = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send/confirm",
        data={"csrf_token": csrf(text), "version": version},
        allow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["Location"] == f"/desk/sends/{ISSUE}/"
    # The request returned with the campaign in the ledger: crash-safe from here.
    assert desk_site.store.ledger.campaign(ISSUE) is not None
    page = settle(browser, f"{desk_site.base}/desk/sends/{ISSUE}/", "abgeschlossen")
    assert "3 von 3 Zustellungen erledigt." in page
    assert '<progress id="progress-all" max="3" value="3">3 / 3</progress>' in page
    assert re.search(r'<th scope="row">Deutsch</th>\s*<td><progress max="2" value="2"', page)
    assert sorted(r.rcpt_tos[0] for r in handler.received) == ADDRESSES
    languages = sorted(
        line.split(b":", 1)[1].strip()
        for r in handler.received
        for line in r.data.splitlines()
        if line.startswith(b"Content-Language:")
    )
    assert languages == [b"de", b"de", b"de-x-ls"]
    # The CLI sees the same campaign.
    code, out, _err = run_cli(desk_site.root, "status", ISSUE, "--json")
    assert code == 0 and json.loads(out)["status"] == "done"
    steps = [row[:3] for row in desk_site.audit() if row[0] == "Paul"]
    assert steps[-3:] == [
        ("Paul", "send-asked", ISSUE),
        ("Paul", "send-refused", ISSUE),
        ("Paul", "send", ISSUE),
    ]
    assert ("Paul", "send", ISSUE, version) in desk_site.audit()
    # A second confirmation sends nobody anything twice.
    again = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send/confirm",
        data={"csrf_token": csrf(text), "version": version},
    )
    assert again.status_code == 200
    assert len(handler.received) == 3


def test_progress_per_edition_counts_deferred_deliveries(
    desk_site: DeskSite, handler: Handler
) -> None:
    handler.rcpt_replies["lena@example.org"] = "451 4.3.0 try again later"
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    approve(desk_site.root)
    browser = log_in(desk_site, paul)
    issue = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    asked = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send", data={"csrf_token": csrf(issue.text)}
    )
    found = VERSION_RE.search(asked.text)
    assert found is not None
    browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send/confirm",
        data={"csrf_token": csrf(asked.text), "version": found.group(1)},
    )
    page = settle(browser, f"{desk_site.base}/desk/sends/{ISSUE}/", "wartet auf neue Versuche")
    # Sent, failed, skipped, deferred, not tried yet.
    cells = r"\s*" + "".join(f"<td>{n}</td>" for n in (0, 0, 0, 1, 0))
    assert re.search(r'<th scope="row">Leichte Sprache</th>.*?</progress> 0 / 1</td>' + cells,
                     page, re.S), page  # fmt: skip
    assert re.search(r'<th scope="row">Deutsch</th>.*?</progress> 2 / 2</td>', page, re.S)
    assert "2 von 3 Zustellungen erledigt." in page and "Nächster Versuch" in page
    # Nothing goes on here by itself: once the send's thread has ended (it may still be
    # closing its connections when the deferral shows), the page no longer reloads.
    assert _stops_reloading(browser, f"{desk_site.base}/desk/sends/{ISSUE}/")


def test_a_send_not_started_yet_may_be_followed(desk_site: DeskSite) -> None:
    """The scheduler (on any host) starts a scheduled send: its reader may follow the page."""
    browser = log_in(desk_site, desk_site.add("Erika", "editor"))
    url = f"{desk_site.base}/desk/sends/{ISSUE}/"
    page = browser.get(url)
    assert "Noch nicht begonnen." in page.text and 'href="?follow=1"' in page.text
    assert "Refresh" not in page.headers  # not unless asked
    followed = browser.get(f"{url}?follow=1")
    assert followed.headers["Refresh"] == "5" and 'href="?follow=0"' in followed.text


def test_a_send_the_rules_refuse_names_the_reason(desk_site: DeskSite, handler: Handler) -> None:
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, paul)
    issue = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    for step in ("send", "schedule"):
        later = (now_utc() + timedelta(days=2)).astimezone(desk_site.config.tz)
        data = {"csrf_token": csrf(issue.text), "date": f"{later:%Y-%m-%d}", "time": "09:00"}
        refused = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/{step}", data=data)
        assert refused.status_code == 409
        assert f"issue &#39;{ISSUE}&#39; is not approved" in refused.text, refused.text
        assert "Nicht gesendet" in refused.text and "Versand bestätigen" not in refused.text
    # Without an approval the confirming step refuses too, whatever version it names.
    current = VERSION_RE.search(issue.text)
    assert current is not None
    refused = browser.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send/confirm",
        data={"csrf_token": csrf(issue.text), "version": current.group(1)},
    )
    assert refused.status_code == 409 and "is not approved" in refused.text
    assert desk_site.store.ledger.campaign(ISSUE) is None and handler.received == []
    actions = [row[1] for row in desk_site.audit() if row[0] == "Paul"]
    assert actions.count("send-refused") == 2 and "schedule-refused" in actions
    # An editor sees no send form and may not send.
    editor = log_in(desk_site, erika)
    page = editor.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    assert "Jetzt senden …" not in page.text
    answer = editor.post(
        f"{desk_site.base}/desk/issues/{ISSUE}/send", data={"csrf_token": csrf(page.text)}
    )
    assert answer.status_code == 403
    # Without the form token nothing is asked.
    answer = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/send", data={"csrf_token": "x"})
    assert answer.status_code == 400


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Setup", "-c", "user.email=setup@example.org",
         *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_schedule_writes_send_at_as_a_commit_by_the_account(
    desk_site: DeskSite, handler: Handler
) -> None:
    _git(desk_site.root, "init", "--quiet")
    _git(desk_site.root, "add", "content")
    _git(desk_site.root, "commit", "--quiet", "-m", "Start")
    paul = desk_site.add("Paul", "approver", "paul@example.org")
    approve(desk_site.root)
    browser = log_in(desk_site, paul)
    issue = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    # Now (or before) is no time to schedule.
    past = {"csrf_token": csrf(issue.text), "date": "2020-02-04", "time": "09:00"}
    refused = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/schedule", data=past)
    assert refused.status_code == 409 and "has passed" in refused.text
    bad = {"csrf_token": csrf(issue.text), "date": "2030-02-30", "time": "09:00"}
    refused = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/schedule", data=bad)
    assert refused.status_code == 409 and "Datum und Uhrzeit sind ungültig" in refused.text
    day = (now_utc() + timedelta(days=3)).astimezone(desk_site.config.tz).date()
    data = {"csrf_token": csrf(issue.text), "date": day.isoformat(), "time": "07:30"}
    asked = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/schedule", data=data)
    assert asked.status_code == 200 and "Zeitpunkt bestätigen" in asked.text
    assert "07:30" in asked.text and re.search(r"<dt>Empfänger</dt><dd>3</dd>", asked.text)
    assert "Gerade läuft kein Planer" in asked.text  # the test runs no `comms serve`
    found = VERSION_RE.search(asked.text)
    assert found is not None
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    before = file.read_text(encoding="utf-8")
    confirm = {"csrf_token": csrf(asked.text), "version": found.group(1)}
    confirm |= {"date": day.isoformat(), "time": "07:30"}
    done = browser.post(f"{desk_site.base}/desk/issues/{ISSUE}/schedule/confirm", data=confirm)
    assert done.status_code == 200 and "Geplant. Der Planer sendet" in done.text
    after = file.read_text(encoding="utf-8")
    # One line changed, as a person would change it.
    assert after == before.replace("send_at: 2020-02-04 09:00", f"send_at: {day} 07:30")
    log = _git(desk_site.root, "log", "-1", "--format=%an <%ae>|%s", "--", str(file))
    subject = f"Schedule issue {ISSUE} for {day} 07:30 on the desk"
    assert log.strip() == f"Paul <paul@example.org>|{subject}"
    # The version is unchanged, so its approval holds; the scheduler's plan has the send.
    issue = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/")
    assert f"{found.group(1)[:12]}:\nfreigegeben" in issue.text
    code, out, err = run_cli(desk_site.root, "schedule", "--json")
    assert code == 0, err
    jobs = {job["id"]: job for job in json.loads(out)["jobs"]}
    due = datetime.fromisoformat(jobs[f"send:{ISSUE}"]["next_run"])
    assert due.astimezone(desk_site.config.tz).strftime("%Y-%m-%d %H:%M") == f"{day} 07:30"
    assert ("Paul", "schedule", ISSUE, found.group(1)) in desk_site.audit()
    assert handler.received == []


def test_held_and_refused_sends_are_listed_with_what_to_do(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    engine = desk_site.store.engine
    due = datetime(2020, 2, 4, 8, 0, tzinfo=UTC)
    hold(engine, ISSUE, due, now_utc())
    reason = "issue '2019-11-newsletter' is not approved (version 0123456789ab)"
    record_problem(engine, "2019-11-newsletter", "refused", reason, due, now_utc())
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/sends/")
    assert page.status_code == 200
    text = page.text
    assert "Zurückgehaltene und abgelehnte Versände" in text
    assert f'href="/desk/issues/{ISSUE}/">{ISSUE}</a>' in text
    assert "Zurückgehalten: Der Planer fand den Versand zu spät" in text
    assert "Di., 4. Februar 2020, 09:00 Uhr" in text  # in Berlin
    assert "Von den Versandregeln abgelehnt: issue &#39;2019-11-newsletter&#39; is not" in text
    assert "Beheben Sie den genannten Grund" in text
    # The same the CLI lists.
    code, out, _err = run_cli(desk_site.root, "status")
    assert code == 0 and ISSUE in out and "2019-11-newsletter" in out


def test_the_reports_of_an_issue_and_of_the_audience(desk_site: DeskSite, handler: Handler) -> None:
    erika = desk_site.add("Erika", "editor")
    approve(desk_site.root)
    code, out, err = run_cli(desk_site.root, "send", ISSUE, "--now", "--yes")
    assert code == 0, out + err
    browser = log_in(desk_site, erika)
    missing = browser.get(f"{desk_site.base}/desk/issues/2019-11-newsletter/report")
    assert missing.status_code == 404 and "never sent" in missing.text
    page = browser.get(f"{desk_site.base}/desk/issues/{ISSUE}/report")
    assert page.status_code == 200
    text = page.text
    assert "<dt>Zugestellt</dt><dd>3</dd>" in text
    assert '<img src="data:image/svg+xml;base64,' in text
    assert '<th scope="row">Deutsch</th><td>2</td>' in text
    # Each chart's figures as a table too: the outcome chart counts 3 delivered.
    assert re.search(r'<th scope="row">Zugestellt</th><td>3</td>', text)
    audience = browser.get(f"{desk_site.base}/desk/report/audience?from=2020-01-01")
    assert audience.status_code == 200 and "<h1>Bericht über die Abonnenten</h1>" in audience.text
    assert '<th scope="row">Aktive Abonnenten</th><td>3</td>' in audience.text
    assert audience.text.count('<img src="data:image/svg+xml;base64,') == 2
    # Periods a month-by-month count cannot make are refused, not a 500 or a long loop.
    for period in ("to=9999-12-31", "from=0001-01-01"):
        refused = browser.get(f"{desk_site.base}/desk/report/audience?{period}")
        assert refused.status_code == 400, period
    overview = browser.get(f"{desk_site.base}/desk/sends/")
    assert f'<a href="/desk/sends/{ISSUE}/">{ISSUE}</a>' in overview.text
    assert "abgeschlossen" in overview.text


# -- a desk send under `comms serve`: SIGTERM and SIGKILL ----------------------------------


def _serve(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    config_path = root / "comms.toml"
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(config_path), "serve",
         "--port", str(port), "--no-scheduler"],
        env=os.environ | env | database_env(config_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert str(port) in process.stdout.readline()
    return process, f"http://127.0.0.1:{port}"


def _statuses(root: Path) -> list[str]:
    config = load_config(root / "comms.toml")
    store = open_store(config)
    try:
        with store.engine.connect() as conn:
            return sorted(conn.execute(sa.select(deliveries.c.status)).scalars())
    finally:
        store.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_desk_send_survives_the_server_stopping(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, stop: signal.Signals
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    import_people(site_copy)
    approve(site_copy)
    with (site_copy / "comms.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n[desk]\nenabled = true\n")
    code, out, err = run_cli(site_copy, "users", "add", "Paul", "--role", "approver")
    assert code == 0, err
    password = re.search(r"password: (\S+)", out)
    secret = re.search(r"TOTP secret: ([A-Z2-7]+)", out)
    assert password is not None and secret is not None
    paul = Person("Paul", password.group(1), secret.group(1))
    # Every message takes a while at the server: the send is still running when it stops.
    handler = Handler(slow_data={address: 1.0 for address in ADDRESSES})
    with smtp_server(handler) as port:
        env = {"COMMS_SECRET_KEY": SECRET, "COMMS_TRANSPORT": f"smtp://127.0.0.1:{port}"}
        env |= {"COMMS_DELIVERY_CONCURRENCY": "1"} | FAST
        process, base = _serve(site_copy, env)
        try:
            browser = log_in_at(base, paul)
            issue = browser.get(f"{base}/desk/issues/{ISSUE}/")
            asked = browser.post(
                f"{base}/desk/issues/{ISSUE}/send", data={"csrf_token": csrf(issue.text)}
            )
            found = VERSION_RE.search(asked.text)
            assert found is not None, asked.text
            sent = browser.post(
                f"{base}/desk/issues/{ISSUE}/send/confirm",
                data={"csrf_token": csrf(asked.text), "version": found.group(1)},
            )
            assert sent.status_code == 200 and "Stand des Versands" in sent.text
            # While it goes on the page reloads by itself, unless the reader turns that off.
            assert sent.headers["Refresh"] == "5" and 'href="?follow=0"' in sent.text
            still = browser.get(f"{base}/desk/sends/{ISSUE}/?follow=0")
            assert "Refresh" not in still.headers and 'href="?follow=1"' in still.text
            for _ in range(200):  # until the first message is at the server
                if handler.received:
                    break
                time.sleep(0.05)
            process.send_signal(stop)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.stderr is not None
        log = process.stderr.read()
        assert "Traceback" not in log
        statuses = _statuses(site_copy)
        if stop == signal.SIGTERM:
            # The message in flight was finished and recorded; the rest handed back.
            assert code == 0, log
            assert "sending" not in statuses and "sent" in statuses, statuses
        # `comms send` resumes (a killed run's rows at once: its process is gone).
        code, out, err = run_cli(site_copy, "send", ISSUE, "--yes", env=env)
        assert code == 0, out + err
    assert _statuses(site_copy) == ["sent", "sent", "sent"]
    if stop == signal.SIGTERM:
        assert sorted(r.rcpt_tos[0] for r in handler.received) == ADDRESSES
    else:
        # Killed while the server held a message: it goes again with the same Message-ID (the
        # ledger's one ambiguous message per connection), so a mailbox keeps one copy.
        ids = {r.rcpt_tos[0]: message_id(r.data) for r in handler.received}
        assert sorted(ids) == ADDRESSES and len(handler.received) <= len(ADDRESSES) + 1
        for r in handler.received:
            assert message_id(r.data) == ids[r.rcpt_tos[0]]


def message_id(data: bytes) -> bytes:
    """The Message-ID header of a received message."""
    return next(
        line.split(b":", 1)[1].strip()
        for line in data.splitlines()
        if line.lower().startswith(b"message-id:")
    )
