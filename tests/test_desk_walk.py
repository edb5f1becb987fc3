"""The whole desk in one walk in Chromium, as issue 24 asks: an editor logs in, writes a new
issue with a picture, fixes a problem the page shows beside its field, previews and proofs it;
a second account logs in with TOTP at a second desk, changes the subject and so may not approve
it (four eyes) until the editor takes the change over, then approves and schedules it; the
scheduler (as `comms serve` runs it) sends it while the status page is watched until it is
done; the audit log and the git history show each step.

Real parts throughout: the app over HTTP, an SMTP server on 127.0.0.1 that receives the proof
and the sent mails, a git repository as the content folder, SQLite and PostgreSQL. axe-core
(WCAG 2 A/AA) checks every page the walk visits; forms are used by keyboard where practical."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest
import time_machine
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from comms.core.clock import now_utc
from comms.publish.images import MAX_SIDE
from comms.schedule.runner import SchedulerHandle, start_scheduler

from .deskkit import SECRET, DeskSite, Person, open_desk, violations
from .schedkit import open_site, wait_for
from .smtp_servers import Handler, smtp_server
from .test_desk_media import _git as git
from .test_desk_sending import ADDRESSES, FAST, import_people

# One walk, both databases; Chromium is slow to start: the browser files share an xdist worker.
pytestmark = [pytest.mark.database, pytest.mark.slow, pytest.mark.xdist_group("chromium")]

TITLE = "Sommerfest im Quartier"
NEW_TEXT = "Am Samstag feiern wir gemeinsam im Stadtteilzentrum."
SECOND_TEXT = "Bitte bringen Sie einen Salat mit."
PREHEADER = "Einladung zum Sommerfest und ein Bild vom letzten Jahr."
ALT = "Menschen an langen Tischen im Hof"
#: The picture as the mails show it: a copy sized for mail from the uploaded file.
PICTURE = 'src="https://newsletter.example.org/_sized/images/sommerfest-'


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def desk_site(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, handler: Handler
) -> Iterator[DeskSite]:
    """The sample site as a git repository with three subscribers, the desk on, and a real
    SMTP server as its transport."""
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    # The scheduler notices the desk's change of send_at within a second, not ten.
    monkeypatch.setenv("COMMS_SCHEDULE_WATCH_SECONDS", "0.5")
    git(site_copy, "init", "--quiet")
    git(site_copy, "add", "content", "static")
    git(site_copy, "commit", "--quiet", "-m", "Start")
    with smtp_server(handler) as port:
        monkeypatch.setenv("COMMS_TRANSPORT", f"smtp://127.0.0.1:{port}")
        import_people(site_copy)
        with open_desk(site_copy) as site:
            yield site


@pytest.fixture
def scheduler(desk_site: DeskSite) -> Iterator[list[SchedulerHandle]]:
    """Room for the scheduler the walk starts; shut down at the end even when it fails."""
    started: list[SchedulerHandle] = []
    yield started
    for handle in started:
        handle.shutdown()
        handle.store.close()


def visit(page: Page, url: str) -> None:
    """Go to `url`: one h1 and no axe violation, as on every page the walk sees."""
    page.goto(url)
    checked(page)


def checked(page: Page) -> None:
    """The page now shown has one h1 and passes axe."""
    assert page.locator("h1").count() == 1, page.url
    assert violations(page) == "", page.url


def log_in(page: Page, site: DeskSite, person: Person) -> None:
    """By keyboard: the name, Tab, the password, Enter; then the TOTP code if it has one."""
    visit(page, f"{site.base}/desk/login")
    page.focus("#name")
    page.keyboard.type(person.name)
    page.keyboard.press("Tab")
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")
    if person.totp is not None:
        page.wait_for_url("**/desk/code")
        checked(page)
        page.focus("#code")
        page.keyboard.type(pyotp.TOTP(person.totp).now())
        page.keyboard.press("Enter")
    page.wait_for_url("**/desk/")
    checked(page)


def log_out(page: Page) -> None:
    page.locator("form[action='/desk/logout'] button").click()
    page.wait_for_url("**/desk/login")


def press(page: Page, selector: str) -> None:
    """Focus a button and press Enter on it, as a keyboard user does."""
    page.locator(selector).focus()
    page.keyboard.press("Enter")


def mails_to(handler: Handler, address: str) -> list[EmailMessage]:
    found = []
    for envelope in handler.received:
        if address in envelope.rcpt_tos:
            message = message_from_bytes(envelope.data, policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def commits(root: Path) -> list[str]:
    """The repository's commits after the first, oldest first: "author <email>|subject"."""
    log = git(root, "log", "--reverse", "--format=%an <%ae>|%s")
    return log.splitlines()[1:]


def test_the_whole_walk_from_writing_to_a_scheduled_send(
    desk_site: DeskSite,
    browser: Browser,
    handler: Handler,
    scheduler: list[SchedulerHandle],
    tmp_path: Path,
) -> None:
    site, root = desk_site, desk_site.root
    erika = site.add("Erika", "editor", "erika@example.org")
    paul = site.add("Paul", "approver", "paul@example.org")
    anna = site.add("Anna", "admin", "anna@example.org")
    assert erika.totp is None and paul.totp is not None and anna.totp is not None
    photo = tmp_path / "sommerfest.jpg"
    Image.new("RGB", (3200, 2400), (200, 140, 40)).save(photo, "JPEG")
    # The clock ticks as usual; the walk moves it forward once, to when the send is due, so
    # that no test waits a minute (the scheduler and the server run in this process).
    with time_machine.travel(now_utc(), tick=True) as clock:
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        # -- the editor writes a new issue from the archetype -----------------------------
        log_in(page, site, erika)
        page.get_by_role("link", name="Newsletter", exact=True).click()
        page.wait_for_url("**/desk/new/issue")
        checked(page)
        page.focus("#title")
        page.keyboard.type(TITLE)
        press(page, "form[action='/desk/new/issue'] button:not([name])")
        page.wait_for_url("**/desk/edit/issue/*?done=create")
        checked(page)
        slug = page.url.split("/desk/edit/issue/")[1].split("?")[0]

        # The archetype's placeholders are problems shown beside their field and line; the
        # editor fixes them, and each goes away as it is typed.
        preheader = page.locator("#problems-preheader li")
        expect(preheader).to_have_count(1)
        page.fill("#field-preheader", "")
        page.focus("#field-preheader")
        page.keyboard.type(PREHEADER)
        expect(preheader).to_have_count(0)
        body = page.locator("#body")
        expect(page.locator("#problems-text li", has_text="[[")).not_to_have_count(0)
        body.fill("")
        body.focus()
        page.keyboard.type(f"Liebe Leserinnen und Leser,\n\n{NEW_TEXT}\n")
        expect(page.locator("#problems-text li", has_text="[[")).to_have_count(0)
        page.select_option("#field-status", "ready")
        checked(page)
        press(page, "form[data-check] button[type=submit]")
        page.wait_for_url("**?done=save")
        checked(page)

        # The picture: uploaded with its alternative text, then added to the new issue.
        page.get_by_role("link", name="Bilder").click()
        page.wait_for_url("**/desk/images")
        checked(page)
        page.set_input_files("#file", str(photo))
        page.focus("#alt")
        page.keyboard.type(ALT)
        press(page, "form[action='/desk/images'] button[type=submit]")
        page.wait_for_selector("text=Bild hochgeladen")
        checked(page)
        page.select_option("#item", f"issue/{slug}")
        press(page, "form[action='/desk/images/insert'] button[type=submit]")
        page.wait_for_url(f"**/desk/edit/issue/{slug}?done=save")
        checked(page)
        issue_file = root / "content" / "issues" / f"{slug}.md"
        text = issue_file.read_text(encoding="utf-8")
        assert NEW_TEXT in text and f"![{ALT}](/images/sommerfest.jpg)" in text
        assert "[[" not in text and "status: ready" in text
        with Image.open(root / "static" / "images" / "sommerfest.jpg") as stored:
            assert stored.size == (MAX_SIDE, 1800)  # scaled down to the size budget

        # The preview: every edition at 600 and 375 px, with the new text and the picture.
        visit(page, f"{site.base}/desk/issues/{slug}/")
        frames = page.locator("iframe[title^='Deutsch']")
        widths = [frames.nth(i).get_attribute("width") for i in range(frames.count())]
        assert widths == ["600", "375"]
        # The picture shows before any build has made its resized copy: inline, the mail's
        # own copy for sharp screens (twice the 552 px column).
        preview = frames.first.get_attribute("srcdoc") or ""
        assert NEW_TEXT in preview and 'src="data:image/jpeg;base64,' in preview
        picture = page.frame_locator("iframe[title^='Deutsch']").first.locator(f"img[alt='{ALT}']")
        assert picture.evaluate("image => image.complete && image.naturalWidth") == 1104
        # An editor proofs but may not approve: the page offers no approval, and a forged
        # form (with the page's own CSRF token) is refused.
        assert page.locator(f"form[action='/desk/issues/{slug}/approve']").count() == 0
        token = page.locator("input[name=csrf_token]").first.input_value()
        forged: dict[str, str | float | bool] = {"csrf_token": token, "version": "0" * 64}
        answer = page.request.post(f"{site.base}/desk/issues/{slug}/approve", form=forged)
        assert answer.status == 403
        page.select_option("#edition", "de")
        press(page, f"form[action='/desk/issues/{slug}/proof'] button")
        page.wait_for_url("**?done=proof")
        checked(page)
        wait_for(lambda: len(mails_to(handler, "erika@example.org")) == 1)
        proof = html_of(mails_to(handler, "erika@example.org")[0])
        assert NEW_TEXT in proof and PICTURE in proof and ALT in proof

        # -- four eyes: whoever changed the version last may not approve it ---------------
        # Paul, at his own desk (a browser context of its own), improves the subject; then
        # he may not approve it, until Erika takes his change over with one of her own.
        other = browser.new_page(viewport={"width": 1280, "height": 900})
        log_in(other, site, paul)
        visit(other, f"{site.base}/desk/edit/issue/{slug}")
        other.focus("#field-subject")
        other.keyboard.press("End")
        other.keyboard.type(" mit Bild")
        press(other, "form[data-check] button[type=submit]")
        other.wait_for_url("**?done=save")
        visit(other, f"{site.base}/desk/issues/{slug}/")
        press(other, f"form[action='/desk/issues/{slug}/approve'] button")
        other.wait_for_url(f"**/desk/issues/{slug}/approve")
        checked(other)
        refusal = other.inner_text("p.error[role=alert]")
        # In the desk's words: what to do on the desk, not which command to run.
        assert f"Paul hat die Ausgabe „{slug}“ zuletzt geändert" in refusal
        assert "comms approve" not in refusal
        visit(page, f"{site.base}/desk/edit/issue/{slug}")
        page.locator("#body").focus()
        page.keyboard.press("Control+End")
        page.keyboard.type(f"\n{SECOND_TEXT}\n")
        press(page, "form[data-check] button[type=submit]")
        page.wait_for_url("**?done=save")
        checked(page)
        log_out(page)
        page.close()
        page = other

        # -- the approver approves and schedules, with the scheduler running ---------------
        config, store = open_site(root)
        handle = start_scheduler(config, store)
        assert handle is not None
        scheduler.append(handle)
        visit(page, f"{site.base}/desk/issues/{slug}/")
        press(page, f"form[action='/desk/issues/{slug}/approve'] button")
        page.wait_for_url("**?done=approve")
        checked(page)
        # One to two minutes ahead, in the site's time zone (the form takes whole minutes).
        ahead = now_utc() + timedelta(minutes=2)
        due = ahead.astimezone(config.tz).replace(second=0, microsecond=0)
        page.fill("#send-date", due.date().isoformat())
        page.fill("#send-time", due.strftime("%H:%M"))
        press(page, f"form[action='/desk/issues/{slug}/schedule'] button")
        page.wait_for_url(f"**/desk/issues/{slug}/schedule")
        checked(page)
        assert page.locator("h1").inner_text() == "Zeitpunkt bestätigen"
        press(page, f"form[action='/desk/issues/{slug}/schedule/confirm'] button")
        page.wait_for_url("**/desk/sends/?done=schedule")
        checked(page)
        assert "Geplant" in page.inner_text("main")
        # The scheduler reads the new send_at from the file and plans the send.
        wait_for(lambda: scheduled_at(handle, slug) == due)

        # -- watch it send: the status page, told to reload itself, before the send is due --
        visit(page, f"{site.base}/desk/sends/{slug}/")
        assert page.get_by_text("Noch nicht begonnen.").count() == 1
        press(page, "a[href='?follow=1']")
        page.wait_for_url("**?follow=1")
        checked(page)
        clock.move_to(due + timedelta(seconds=1))
        handle.wakeup()
        wait_for(lambda: ("ran", f"send:{slug}") in handle.events, timeout=60)
        # The page reloads by itself (no script) until the send is done.
        page.get_by_text("abgeschlossen").wait_for(timeout=60_000)
        checked(page)
        assert page.get_by_text("3 von 3 Zustellungen erledigt.").count() == 1
        for address in ADDRESSES:
            (sent,) = mails_to(handler, address)
            html = html_of(sent)
            assert NEW_TEXT in html and SECOND_TEXT in html, address
            assert sent["Subject"].endswith(f"{TITLE} mit Bild"), address
            assert PICTURE in html, address
        log_out(page)

        # -- the audit log shows each step, to an admin ------------------------------------
        log_in(page, site, anna)
        visit(page, f"{site.base}/desk/audit")
        table = page.inner_text("main table")
        page.close()

    # The desk's actions in order (the accounts were made with `comms users add`).
    image = "images/sommerfest.jpg"
    steps = [(w, what, subject) for w, what, subject, _ in site.audit() if w != "cli:root"]
    assert steps == [
        ("Erika", "login", ""),
        ("Erika", "create", f"issue/{slug}"),
        ("Erika", "save", f"issue/{slug}"),
        ("Erika", "upload-image", image),
        ("Erika", "save", f"issue/{slug}"),
        ("Erika", "proof", slug),
        ("Paul", "login", ""),
        ("Paul", "save", f"issue/{slug}"),
        ("Paul", "approve-refused", slug),
        ("Erika", "save", f"issue/{slug}"),
        ("Erika", "logout", ""),
        ("Paul", "approve", slug),
        ("Paul", "schedule-asked", slug),
        ("Paul", "schedule", slug),
        ("Paul", "logout", ""),
        ("Anna", "login", ""),
    ]
    for who, what in (("Erika", "save"), ("Paul", "approve"), ("Paul", "schedule")):
        assert re.search(rf"{who}\s+{what}\s+", table), (who, what, table)
    # Every save is a commit with its account as author, as a person's would be.
    erika_did = "Erika <erika@example.org>|{} on the desk"
    assert commits(root) == [
        erika_did.format(f"Add issues/{slug}.md"),
        erika_did.format(f"Edit issues/{slug}.md"),  # the problems fixed
        erika_did.format("Add images/sommerfest.jpg"),
        erika_did.format(f"Edit issues/{slug}.md"),  # the picture added to the text
        f"Paul <paul@example.org>|Edit issues/{slug}.md on the desk",  # the subject
        erika_did.format(f"Edit issues/{slug}.md"),  # Paul's change taken over
        f"Paul <paul@example.org>|Schedule issue {slug} for {due:%Y-%m-%d %H:%M} on the desk",
    ]
    assert git(root, "status", "--porcelain", "content", "static") == ""


def scheduled_at(handle: SchedulerHandle, slug: str) -> datetime | None:
    """When the scheduler will send issue `slug` (None while it plans no send)."""
    for job in handle.jobs():
        if job.id == f"send:{slug}":
            return job.next_run_time.astimezone(handle.config.tz)  # type: ignore[no-any-return]
    return None
