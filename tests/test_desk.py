"""The editor's desk: the gate on sending, --now, approval (four eyes), recorded proofs, the
archive before and after a send, and the preview's facts."""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine
from aiosmtpd.smtp import SMTP, Envelope, Session

from comms.core.config import load_config
from comms.schedule import jobs
from comms.web.preview import Preview

from .conftest import ROOT
from .databases import database_env
from .ledgerkit import run_cli
from .schedkit import SECRET, berlin, outbox, with_subscribers
from .smtp_servers import Handler, smtp_server

ISSUE = "2020-02-newsletter"
OLD = "2019-11-newsletter"
#: The shipped setting, for a test that sends without approval first (`without_approval`).
APPROVAL = {"COMMS_DELIVERY_REQUIRE_APPROVAL": "true"}


@pytest.fixture
def site(site_copy: Path) -> Path:
    """The sample site with three confirmed subscribers; mail goes to var/outbox (files)."""
    with_subscribers(site_copy)
    return site_copy


def issue_file(root: Path, slug: str = ISSUE) -> Path:
    return root / "content" / "issues" / f"{slug}.md"


def set_front_matter(path: Path, key: str, value: str) -> None:
    """Replace one front matter key (a block list with it) by `key: value` on line 2."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and line.startswith((" ", "-")):
            continue
        skipping = False
        out.append(line)
    out.insert(1, f"{key}: {value}\n")
    path.write_text("".join(out), encoding="utf-8")


def status(root: Path, slug: str = ISSUE) -> dict[str, object]:
    code, out, err = run_cli(root, "status", slug, "--json")
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def unknown_event(root: Path) -> str:
    """Name an event that does not exist in the issue; the expected PATH:LINE error."""
    set_front_matter(issue_file(root), "events", "[gibtsnicht]")
    return f"content/issues/{ISSUE}.md:2: field 'events': no event 'gibtsnicht'"


# -- the gate: one rule for `comms send` and the scheduler -----------------------------------


@pytest.mark.database
def test_send_refuses_an_issue_that_names_an_unknown_event(site: Path) -> None:
    expected = unknown_event(site)
    code, out, err = run_cli(site, "send", ISSUE, "--now")
    assert code == 1
    assert expected in err  # every problem as PATH:LINE ...
    assert err.endswith("fix them (see `comms check`); nothing sent\n")  # ... and the verdict
    assert outbox(site) == []
    assert status(site)["status"] == "not started"


@pytest.mark.database
def test_the_scheduler_refuses_the_same_issue_and_logs_every_problem(
    site: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    expected = unknown_event(site)
    due = berlin(2020, 2, 4, 9, 0)
    with time_machine.travel(berlin(2020, 2, 4, 9, 0, 1), tick=False):
        with caplog.at_level(logging.ERROR, "comms.scheduler"):
            # Refused and recorded (comms status, comms schedule), logged in lines, no raise.
            assert jobs.scheduled_send(str(site / "comms.toml"), ISSUE, due.isoformat()) == (
                "refused"
            )
    assert f"send of {ISSUE}: {expected}" in caplog.text
    assert f"scheduled send of {ISSUE} refused, nothing sent: issue '{ISSUE}'" in caplog.text
    assert "Traceback" not in caplog.text
    assert outbox(site) == []


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_send_at_still_to_come_needs_now(site: Path) -> None:
    set_front_matter(issue_file(site), "send_at", "2099-06-01 09:00")
    code, _, err = run_cli(site, "send", ISSUE)
    assert code == 1
    assert err == (
        f"error: issue '{ISSUE}' is scheduled for Mo., 1. Juni 2099, 09:00 Uhr; the scheduler "
        f"(`comms serve`) sends it then; `comms send {ISSUE} --now` sends it now; nothing sent\n"
    )
    assert outbox(site) == []
    code, out, _ = run_cli(site, "send", ISSUE, "--dry-run")
    assert code == 0
    # What the real command would do: refuse until then (not "now", as it said before).
    assert (
        f"  time: not now: issue '{ISSUE}' is scheduled for Mo., 1. Juni 2099, 09:00 Uhr; the "
        f"scheduler (`comms serve`) sends it then; `comms send {ISSUE} --now` sends it now"
    ) in out.splitlines()
    assert "  to send then: 3 in 1 batch(es) of up to 500" in out.splitlines()
    code, out, _ = run_cli(site, "send", ISSUE, "--dry-run", "--now")
    assert "  time: now, before its send_at Mo., 1. Juni 2099, 09:00 Uhr (--now)" in out
    code, out, err = run_cli(site, "send", ISSUE, "--now")
    assert code == 0, err
    assert "Send it now?" not in out  # no terminal: no question
    assert len(outbox(site)) == 3


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_send_at_is_judged_by_the_reference_date_not_the_wall_clock(site: Path) -> None:
    """The sample issue's send_at (4 Feb 2020) lies long behind the wall clock; what decides is
    `reference_date`, the one "now" the content sees (docs/sending.md, the due rule)."""
    before = {"COMMS_REFERENCE_DATE": "2020-01-15"}
    code, _, err = run_cli(site, "send", ISSUE, env=before)
    assert code == 1
    assert f"issue '{ISSUE}' is scheduled for Di., 4. Februar 2020, 09:00 Uhr" in err
    after = {"COMMS_REFERENCE_DATE": "2020-02-05"}
    code, out, err = run_cli(site, "send", ISSUE, env=after)
    assert code == 0, err
    assert len(outbox(site)) == 3


# -- approval ---------------------------------------------------------------------------------


@pytest.mark.database
@pytest.mark.slow
def test_approval_covers_every_edit_and_the_recipients(site: Path) -> None:
    code, _, err = run_cli(site, "send", ISSUE, "--now")
    assert code == 1 and f"issue '{ISSUE}' is not approved (version " in err
    assert "then run `comms approve 2020-02-newsletter`; nothing sent" in err
    code, out, err = run_cli(site, "approve", ISSUE, "--by", "Erika Muster")
    assert code == 0, err
    assert out.startswith("approved #3 „Termine 2020: Schwerpunktkonferenz am 16. April und ")
    assert "by Erika Muster: subject, preheader, HTML, text and recipients " in out
    assert "(every active subscriber; 3 now) of 4 edition(s):\n" in out
    assert "  de (Deutsch): „Termine 2020: Schwerpunktkonferenz am 16. April und " in out
    first = status(site)["version"]
    assert isinstance(first, str)
    # An edit after the approval, even to the recipients alone, needs a new approval.
    for key, value in (("preheader", '"Neuer Vorspann"'), ("topics", "[sprache]")):
        set_front_matter(issue_file(site), key, value)
        code, _, err = run_cli(site, "send", ISSUE, "--now")
        assert code == 1
        assert f"issue '{ISSUE}' changed after its approval: Erika Muster approved version " in err
        assert first[:12] in err
        assert outbox(site) == []
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Kai Prüfer")
    assert code == 0, err
    code, _, err = run_cli(site, "send", ISSUE, "--now")
    assert code == 0, err
    data = status(site)
    approvals = data["approvals"]
    assert isinstance(approvals, list)
    assert [a["approved_by"] for a in approvals] == ["Erika Muster", "Kai Prüfer"]
    assert approvals[1]["digest"] == data["version"] != first
    assert data["approved"] is True


@pytest.mark.database
def test_the_scheduler_refuses_an_issue_that_is_not_approved(
    site: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    due = berlin(2020, 2, 4, 9, 0)
    with time_machine.travel(berlin(2020, 2, 4, 9, 0, 1), tick=False):
        with caplog.at_level(logging.ERROR, "comms.scheduler"):
            assert jobs.scheduled_send(str(site / "comms.toml"), ISSUE, due.isoformat()) == (
                "refused"
            )
    assert "is not approved" in caplog.text
    assert outbox(site) == []


@pytest.mark.database
def test_approve_refuses_an_issue_with_errors(site: Path) -> None:
    expected = unknown_event(site)
    code, _, err = run_cli(site, "approve", ISSUE)
    assert code == 1
    assert expected in err and err.endswith(f"issue '{ISSUE}' has 1 error(s); not approved\n")


@pytest.mark.database
@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_the_demo_approves_its_issue_once(site_copy: Path) -> None:
    shutil.copytree(ROOT / "samples", site_copy / "samples")
    for _ in range(2):
        code, out, err = run_cli(site_copy, "demo")
        assert code == 0, err
        assert "Approved: version " in out and f"of {ISSUE} by „comms demo“" in out
    approvals = status(site_copy)["approvals"]
    assert isinstance(approvals, list) and len(approvals) == 1
    assert len(outbox(site_copy)) == 5
    # The second run builds first: the page of the issue sent in the first run stays.
    assert (site_copy / "public" / "issues" / ISSUE / "index.html").is_file()


# -- proofs -----------------------------------------------------------------------------------


@pytest.mark.database
def test_a_proof_says_where_it_went_is_recorded_and_recognisable(site: Path) -> None:
    code, out, err = run_cli(site, "send", ISSUE, "--to", "Red@Example.org", "--dry-run")
    assert code == 0 and "nothing is sent" in out
    code, out, err = run_cli(site, "send", ISSUE, "--to", "Red@Example.org")
    assert code == 0, err
    data = status(site)
    version = data["version"]
    assert isinstance(version, str)
    [path] = outbox(site)  # the proof, outside the list
    assert out == (
        f"proof of {ISSUE} (version {version[:12]}, de edition) sent to red@example.org via "
        f"{path}; "
        "recorded (outside the list, the ledger is unchanged)\n"
    )
    proof = parse(path.read_bytes())
    [to] = proof["To"].addresses
    assert (to.display_name, to.addr_spec) == (
        "Korrekturabzug, nicht an die Liste verschickt",
        "red@example.org",
    )
    assert proof["X-Comms-Proof"].startswith(f"version {version[:12]}; ")
    # What is checked is what goes out: the subject is the subscribers' subject, unchanged.
    assert proof["Subject"] == "Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis"
    proofs = data["proofs"]
    assert isinstance(proofs, list)
    [record] = proofs
    assert record["recipient"] == "red@example.org"
    assert record["destination"] == str(path)
    assert record["digest"] == version
    assert data["status"] == "not started"
    code, out, _ = run_cli(site, "status", ISSUE)
    assert "  proof of the de edition to red@example.org on " in out and f"via {path}" in out


@pytest.mark.database
def test_a_proof_over_smtp_names_the_server(site: Path) -> None:
    handler = Handler()
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        code, out, err = run_cli(site, "send", ISSUE, "--to", "red@example.org", "--transport", url)
    assert code == 0, err
    assert f" via smtp://127.0.0.1:{port}; recorded" in out
    assert len(handler.received) == 1


# -- the archive shows what has been sent -----------------------------------------------------


@dataclass
class PageWatch(Handler):
    """Notes whether the issue's web page existed when each message arrived."""

    page: Path = Path("/nonexistent")
    seen: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.seen.append(self.page.is_file())
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
@pytest.mark.slow
def test_the_web_page_exists_before_the_first_mail_leaves(site: Path) -> None:
    code, _, err = run_cli(site, "build")
    assert code == 0, err
    public = site / "public"
    page = public / "issues" / ISSUE / "index.html"
    # Reference date 2020-01-15, send_at 4 Feb 2020: not public yet, like the feeds.
    assert not page.exists()
    assert ISSUE not in (public / "index.html").read_text(encoding="utf-8")
    assert ISSUE not in (public / "feed.xml").read_text(encoding="utf-8")
    handler = PageWatch(page=page)
    with smtp_server(handler) as port:
        code, _, err = run_cli(
            site, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 0, err
    assert handler.seen == [True, True, True]  # "Im Browser ansehen" works from the first
    assert f'href="issues/{ISSUE}/"' in (public / "index.html").read_text(encoding="utf-8")
    assert ISSUE in (public / "feed.xml").read_text(encoding="utf-8")
    # A later build keeps it: the ledger says it has been sent.
    code, _, err = run_cli(site, "build")
    assert code == 0, err
    assert page.is_file()


def test_the_web_page_appears_once_the_send_time_has_come(site_copy: Path) -> None:
    """Without approvals (delivery.require_approval off) the send_at publishes the issue."""
    config = site_copy / "comms.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "reference_date = 2020-01-15", "reference_date = 2020-02-05"
        ),
        encoding="utf-8",
    )
    off = {"COMMS_DELIVERY_REQUIRE_APPROVAL": "false"}
    code, _, err = run_cli(site_copy, "build", env=off)
    assert code == 0, err
    assert (site_copy / "public" / "issues" / ISSUE / "index.html").is_file()
    assert not (site_copy / "var" / "comms.db").exists()  # a build creates no database


@pytest.mark.database
def test_an_unapproved_issue_stays_off_the_web_after_its_send_at(site: Path) -> None:
    """With delivery.require_approval (the sample's), the archive waits for the send: a ready
    issue whose send_at has passed but that nobody approved is neither on the web nor in a
    feed, in any edition."""
    after = {"COMMS_REFERENCE_DATE": "2020-02-05"}  # a day after its send_at
    code, _, err = run_cli(site, "build", env=after)
    assert code == 0, err
    public = site / "public"
    assert not (public / "issues" / ISSUE).exists()
    for name in ("index.html", "feed.xml", "atom.xml", "feed.json", "de-x-ls/feed.xml"):
        assert ISSUE not in (public / name).read_text(encoding="utf-8"), name
    assert OLD in (public / "feed.xml").read_text(encoding="utf-8")  # no send_at: its date
    # Approved, it still waits for its send; the send publishes it before the first mail.
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Kai Prüfer", env=after)
    assert code == 0, err
    code, _, err = run_cli(site, "build", env=after)
    assert ISSUE not in (public / "feed.xml").read_text(encoding="utf-8")
    code, _, err = run_cli(site, "send", ISSUE, env=after)
    assert code == 0, err
    assert (public / "issues" / ISSUE / "index.html").is_file()
    assert ISSUE in (public / "feed.xml").read_text(encoding="utf-8")
    assert ISSUE in (public / "de-x-ls" / "feed.xml").read_text(encoding="utf-8")


# -- the preview ------------------------------------------------------------------------------


@pytest.mark.slow
def test_preview_shows_problems_recipients_and_a_subscribe_page(site_copy: Path) -> None:
    issue = issue_file(site_copy)
    text = issue.read_text(encoding="utf-8")
    head, _, body = text.partition("\n---\n")
    extra = "![Stühle](/images/stuhlbau-projekt-lamspringe.jpg) [hier](https://example.org/)\n\n"
    issue.write_text(f"{head}\n---\n{extra}{body}", encoding="utf-8")
    set_front_matter(issue, "topics", "[sprache]")
    set_front_matter(issue, "events", "[gibtsnicht]")
    config = load_config(site_copy / "comms.toml")
    asked: list[tuple[list[str], list[str]]] = []

    def count(topics: list[str], regions: list[str]) -> int:
        asked.append((topics, regions))
        return 7

    with Preview(config, count) as preview:
        client = preview.app.test_client()
        page = client.get(f"/_preview/{ISSUE}/").get_data(as_text=True)
        problems = page.index('<section class="problems"')
        assert problems < page.index('<dl class="facts">')  # at the top
        errors, warnings = page.split("Warnungen")
        assert "Fehler (sie verhindern den Versand)" in errors
        # One language per screen: the problems are worded like the headings (site.language).
        assert (
            f"content/issues/{ISSUE}.md:2: Feld &#39;events&#39;: &#39;gibtsnicht&#39; gibt es "
            "nicht in events/"
        ) in errors
        assert "Warnung: der Linktext &#39;hier&#39; sagt für sich nichts" in warnings
        assert "derzeit 7:" in page and "Themen: Sprache" in page
        assert (["sprache"], []) in asked
        email = client.get(f"/_preview/{ISSUE}/email.html").get_data(as_text=True)
        # The resized copies (comms.publish.images), from the preview's own build.
        copies = "/_sized/images/stuhlbau-projekt-lamspringe"
        assert f'src="{copies}-1104w.jpg" srcset="{copies}-552w.jpg 1x, {copies}-1104w.jpg 2x"' in (
            email
        )
        assert "https://newsletter.example.org/images/" not in email
        form = client.get("/subscribe")
        assert form.status_code == 200 and 'name="email"' in form.get_data(as_text=True)
        posted = client.post("/subscribe", data={"email": "a@example.org"})
        assert posted.status_code == 200
        assert "Vorschau: nichts gespeichert" in posted.get_data(as_text=True)
    assert not (site_copy / "var" / "comms.db").exists()


# -- on a terminal: the plan and a question ---------------------------------------------------


def _on_terminal(root: Path, *args: str, answer: bytes | None) -> tuple[int, str]:
    """Run `comms send` with a pseudo-terminal as stdin/stdout; answer its question if asked."""
    main, child = pty.openpty()
    env = os.environ | {"COMMS_SECRET_KEY": SECRET, "COLUMNS": "200"}
    env |= database_env(root / "comms.toml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "comms", "--config", str(root / "comms.toml"), "send", *args],
        stdin=child, stdout=child, stderr=child, env=env, cwd=root,
    )  # fmt: skip
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if answer is not None and b"Send it now? [y/N]" in seen:
                os.write(main, answer)
                answer = None
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(timeout=30), seen.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.usefixtures("without_approval")
def test_on_a_terminal_send_shows_the_plan_and_asks(site: Path) -> None:
    code, out = _on_terminal(site, ISSUE, "--now", answer=b"n\n")
    assert code == 1
    assert "About to send #3 „Termine 2020: Schwerpunktkonferenz" in out
    assert "  recipients: 3\n  selected: every active subscriber\n" in out
    assert "error: nothing sent" in out
    assert outbox(site) == []
    code, out = _on_terminal(site, ISSUE, "--now", "--yes", answer=None)
    assert code == 0, out
    assert "Send it now?" not in out
    assert len(outbox(site)) == 3


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_schedule_warns_of_a_send_that_would_be_refused(site: Path) -> None:
    set_front_matter(issue_file(site), "send_at", "2099-06-01 09:00")
    code, out, err = run_cli(site, "schedule")
    assert code == 0 and err == ""
    assert "send #3 „Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis“" in out
    unknown_event(site)
    code, out, err = run_cli(site, "schedule", env=APPROVAL)
    assert code == 0
    assert err == (
        f"warning: the send of {ISSUE} would be refused when it is due: issue '{ISSUE}' is "
        "not sent: 1 error(s) in it or in what it shows; fix them (see `comms check`) "
        f"(`comms send {ISSUE} --dry-run` says why)\n"
    )
    set_front_matter(issue_file(site), "events", "[2020-07-10-follow-up-werkstatt-frauen]")
    code, out, _ = run_cli(site, "schedule", "--json", env=APPROVAL)
    blocked = json.loads(out)["blocked"]
    assert list(blocked) == [ISSUE] and "is not approved" in blocked[ISSUE]


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_an_error_elsewhere_leaves_the_archive_and_the_send_goes_on(site: Path) -> None:
    broken = site / "content" / "practices" / "kaputt.md"
    broken.write_text("---\ntitle: Kaputt\n", encoding="utf-8")  # never closed
    code, _, err = run_cli(site, "send", ISSUE, "--now")
    assert code == 0, err
    assert err == (
        "warning: the web archive was not rebuilt: 1 content error(s) in other files (see "
        "`comms check`); the issue's web page appears with the next build\n"
    )
    assert len(outbox(site)) == 3
    broken.unlink()
    code, _, err = run_cli(site, "build")
    assert code == 0, err
    assert (site / "public" / "issues" / ISSUE / "index.html").is_file()


# -- every edition ----------------------------------------------------------------------------

#: The sample issue with an English translation.
TRANSLATED = "2019-07-newsletter"
EN_SUBJECT = "Women's Workshop in review and the 2019 special prize"


def english_file(root: Path) -> Path:
    return root / "content" / "issues" / f"{TRANSLATED}.en.md"


@pytest.mark.database
@pytest.mark.slow
def test_an_edit_of_a_translation_after_the_approval_is_refused_with_a_diff(site: Path) -> None:
    code, out, err = run_cli(site, "approve", TRANSLATED, "--by", "Erika Muster")
    assert code == 0, err
    assert " of 4 edition(s):\n" in out
    assert "  de (Deutsch): „Werkstatt Frauen im Rückblick und Sonderpreis 2019“, " in out
    assert f"  en (English): „{EN_SUBJECT}“, 0 recipient(s) now\n" in out
    assert "  ar (العربية): „Werkstatt Frauen" in out and "not translated: the original" in out
    assert status(site, TRANSLATED)["approved"] is True
    english = english_file(site)
    text = english.read_text(encoding="utf-8")
    english.write_text(
        text.replace(EN_SUBJECT, "URGENT: confirm your bank details"), encoding="utf-8"
    )
    code, _, _ = run_cli(site, "check")
    assert code == 0  # nothing wrong with the file itself
    code, out, err = run_cli(site, "send", TRANSLATED, "--now", "--yes")
    assert code == 1
    assert f"issue '{TRANSLATED}' changed after its approval: Erika Muster approved" in err
    # The diff shows the English edition's change, and only that edition.
    assert "--- approved (en)\n+++ current (en)\n" in err
    assert f"-Subject: {EN_SUBJECT}\n+Subject: URGENT: confirm your bank details\n" in err
    assert "approved (de)" not in err
    assert outbox(site, TRANSLATED) == []
    data = status(site, TRANSLATED)
    assert data["approved"] is False
    code, out, _ = run_cli(site, "status", TRANSLATED)
    assert ": not approved (required to send)" in out


@pytest.mark.database
def test_an_approval_from_before_editions_does_not_cover_the_translations(site: Path) -> None:
    """An approval recorded before 0008 (no edition texts) covered the site's edition only: on
    a site with translations it is no approval of the whole; on a site with one edition it
    still is."""
    import sqlalchemy as sa

    from comms.content.site import read_site
    from comms.db.tables import approvals
    from comms.publish.render import render_issue
    from comms.sending.approval import approval_digest

    from .databases import engine_for

    config = load_config(site / "comms.toml")
    found, _ = read_site(config)
    issue = found.issues[TRANSLATED]
    home = render_issue(config, found, issue)
    old = approval_digest({"de": home}, issue)  # the digest as recorded before
    engine = engine_for(site / "comms.toml")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(approvals).values(
                slug=TRANSLATED, digest=old, approved_by="Erika Muster",
                approved_at=berlin(2019, 6, 30, 12, 0), editions=None,
            )
        )  # fmt: skip
    engine.dispose()
    code, _, err = run_cli(site, "send", TRANSLATED, "--now", "--yes")
    assert code == 1
    assert (
        f"issue '{TRANSLATED}' is not approved in every edition: Erika Muster approved version "
        f"{old[:12]} on " in err
    )
    assert "before an approval covered the translations (de, en, de-x-ls, ar)" in err
    assert outbox(site, TRANSLATED) == []
    # With the site's edition alone, the old approval is what it was: an approval of it all.
    toml = site / "comms.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text[: text.index("[languages.en]")], encoding="utf-8")
    assert status(site, TRANSLATED)["approved"] is True


@pytest.mark.database
def test_proofs_of_one_edition_or_of_all(site: Path) -> None:
    code, out, err = run_cli(site, "send", TRANSLATED, "--to", "red@example.org", "--lang", "en")
    assert code == 0, err
    [path] = outbox(site, TRANSLATED)
    assert " (version " in out and ", en edition) sent to red@example.org via " in out
    english = parse(path.read_bytes())
    assert english["Subject"] == EN_SUBJECT and english["Content-Language"] == "en"
    code, out, err = run_cli(site, "send", TRANSLATED, "--to", "red@example.org", "--lang", "all")
    assert code == 0, err
    editions = [line.split(" edition)")[0].rsplit(", ", 1)[1] for line in out.splitlines()]
    assert editions == ["de", "en", "de-x-ls", "ar"]
    languages = sorted(parse(p.read_bytes())["Content-Language"] for p in outbox(site, TRANSLATED))
    assert languages == ["ar", "de", "de-x-ls", "en"]
    proofs = status(site, TRANSLATED)["proofs"]
    assert isinstance(proofs, list)
    assert [p["edition"] for p in proofs] == ["en", "de", "en", "de-x-ls", "ar"]
    code, _, err = run_cli(site, "send", TRANSLATED, "--to", "red@example.org", "--lang", "fr")
    assert code == 1
    assert err == "error: no edition in fr; the site offers de, en, de-x-ls, ar (or all)\n"
    code, _, err = run_cli(site, "send", TRANSLATED, "--lang", "en")
    assert code == 2 and "--lang chooses the edition of a proof: give --to ADDR too" in err


@pytest.mark.slow
def test_preview_switches_between_the_editions_of_an_issue(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml")
    with Preview(config) as preview:
        client = preview.app.test_client()
        page = client.get(f"/_preview/{TRANSLATED}/").get_data(as_text=True)
        assert '<nav class="editions" aria-label="Ausgaben">' in page  # German, as the page
        assert (
            f'<a href="/_preview/{TRANSLATED}/?lang=en" hreflang="en"><span lang="en">English'
            "</span></a></li>" in page
        )
        assert f'<a href="/_preview/{TRANSLATED}/" hreflang="de" aria-current="page">' in page
        assert "العربية</span></a> (nicht übersetzt: das Original)" in page
        english = client.get(f"/_preview/{TRANSLATED}/?lang=en").get_data(as_text=True)
        assert f"<h1>{EN_SUBJECT}</h1>".replace("'", "&#39;") in english
        assert f'src="/_preview/{TRANSLATED}/email.html?lang=en"' in english
        assert f'href="/_preview/{TRANSLATED}/email.txt?lang=en"' in english
        mail = client.get(f"/_preview/{TRANSLATED}/email.html?lang=en").get_data(as_text=True)
        assert '<html lang="en"' in mail
        text = client.get(f"/_preview/{TRANSLATED}/email.txt?lang=en").get_data(as_text=True)
        assert "Dear readers," in text
        arabic = client.get(f"/_preview/{TRANSLATED}/email.html?lang=ar").get_data(as_text=True)
        assert '<html lang="ar" dir="rtl"' in arabic
        assert client.get(f"/_preview/{TRANSLATED}/?lang=fr").status_code == 404
        # An issue without a translation has no switch: every edition shows the original.
        other = client.get(f"/_preview/{OLD}/").get_data(as_text=True)
        assert 'class="editions"' not in other


# -- a second pair of eyes --------------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    env = os.environ | {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)


def _commit(root: Path, author: str, message: str) -> None:
    _git(root, "add", "-A")
    _git(
        root, "-c", "user.name=Setzer", "-c", "user.email=setzer@example.org",
        "commit", "-q", "-m", message, "--author", author,
    )  # fmt: skip


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_author_of_the_last_commit_cannot_approve(site: Path) -> None:
    _git(site, "init", "-q")
    # Everything but the issue (and its translations) comes from somebody else.
    (site / "content" / "issues").rename(site / "issues-later")
    _commit(site, "Archiv <archiv@example.org>", "The sample")
    (site / "issues-later").rename(site / "content" / "issues")
    _commit(site, "Erika Muster <erika@example.org>", "Issue 3")
    for name in ("Erika Muster", "erika@example.org", "  erika  MUSTER "):
        code, _, err = run_cli(site, "approve", ISSUE, "--by", name)
        assert code == 1
        assert "changed issue '2020-02-newsletter' last (commit " in err
        assert "the approval needs a second person" in err
    # A translation is part of the issue: its author cannot approve either.
    easy = site / "content" / "issues" / f"{ISSUE}.de-x-ls.md"
    easy.write_text(easy.read_text(encoding="utf-8") + "\nNoch ein Satz.\n", "utf-8")
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Kai Prüfer")
    assert code == 1
    assert err == (
        f"error: content/issues/{ISSUE}.de-x-ls.md: changes not committed, so who made them is "
        "unknown; commit them, then someone other than their author approves; issue "
        f"'{ISSUE}' is not approved\n"
    )
    _commit(site, "Kai Prüfer <kai@example.org>", "Leichte Sprache")
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Kai Prüfer")
    assert code == 1 and "Kai Prüfer changed issue" in err
    # An event the mail shows is part of it too: whoever wrote its current version cannot
    # approve the issue either.
    event = "2020-07-10-follow-up-werkstatt-frauen"
    shown = site / "content" / "events" / f"{event}.md"
    shown.write_text(shown.read_text(encoding="utf-8") + "\nNeu: mit Kinderbetreuung.\n", "utf-8")
    _commit(site, "Lena Lang <lena@example.org>", "Kinderbetreuung")
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Lena Lang")
    assert code == 1
    assert f"Lena Lang changed '{event}', shown in issue '{ISSUE}', last (commit " in err
    code, out, err = run_cli(site, "approve", ISSUE, "--by", "Erika Muster")
    assert code == 0, err
    assert status(site)["approved"] is True


@pytest.mark.database
def test_without_git_the_proof_sender_cannot_approve(site: Path) -> None:
    code, _, err = run_cli(site, "send", ISSUE, "--to", "red@example.org")
    assert code == 0, err
    code, _, err = run_cli(site, "approve", ISSUE)  # the same login name as the proof
    assert code == 1
    assert "sent the last proof of issue '2020-02-newsletter' and counts as its author" in err
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Kai Prüfer")
    assert code == 0, err


@pytest.mark.database
def test_only_the_configured_approvers_may_approve(site: Path) -> None:
    toml = site / "comms.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8") + '\n[desk]\napprovers = ["Kai Prüfer", "Erika Muster"]\n',
        encoding="utf-8",
    )
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "Mallory")
    assert code == 1
    assert err == (
        "error: Mallory is not one of the approvers in [desk] approvers (Kai Prüfer, Erika "
        f"Muster); issue '{ISSUE}' is not approved\n"
    )
    assert status(site)["approvals"] == []
    code, _, err = run_cli(site, "approve", ISSUE, "--by", "kai prüfer")
    assert code == 0, err
