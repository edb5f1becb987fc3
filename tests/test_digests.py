"""Regional digests: definitions checked, issues composed from the calendar, sent per region."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine

from comms.content.cadence import parse_cadence
from comms.content.site import read_site
from comms.core.config import load_config
from comms.mail.message import Recipient
from comms.publish.digest_sections import Reader, sections
from comms.schedule.jobs import compose_digest
from comms.schedule.runner import SchedulerHandle, start_scheduler
from comms.sending.issue_editions import issue_editions

from .ledgerkit import run_cli
from .schedkit import SECRET, berlin, open_site, outbox, wait_for
from .smtp_servers import Handler, smtp_server
from .test_send import import_people

SLUG = "regionen"
DIGEST = """---
title: "Termine in den Regionen"
kinds: [events, practices, awards]
horizon: 6 weeks
cadence: monthly on the first Tuesday
subject: "Termine in Ihrer Region – {month}"
preheader: "Was in den nächsten sechs Wochen ansteht"
status: ready
min_items: 2
---
Liebe Leserinnen und Leser, hier sind die Termine in Ihrer Region.
"""
#: (file slug, region, start, title): the run on 2020-09-01 sees the first five.
EVENTS = [
    ("2020-09-10-dialog-braunschweig", "braunschweig", "2020-09-10 10:00", "Dialog Braunschweig"),
    ("2020-09-15-dialog-lueneburg", "lueneburg", "2020-09-15 10:00", "Dialog Lüneburg"),
    ("2020-09-20-treffen-weser-ems", "weser-ems", "2020-09-20 10:00", "Treffen Weser-Ems"),
    ("2020-09-25-konferenz-land", "landesweit", "2020-09-25 10:00", "Landeskonferenz"),
    ("2020-10-08-werkstatt-braunschweig", "braunschweig", "2020-10-08 10:00", "Werkstatt BS"),
]
TITLES = {title for _, _, _, title in EVENTS}
PEOPLE = (
    "email,name,topics,regions\n"
    "anna@example.org,Anna,,braunschweig\n"
    "bernd@example.org,Bernd,,lueneburg\n"
    "carla@example.org,Carla,,weser-ems\n"
    "dora@example.org,Dora,,leine-weser\n"
    "emil@example.org,Emil,,\n"
)


def event_file(region: str, start: str, title: str, status: str = "planned") -> str:
    """An event's file text."""
    return (
        f'---\ntitle: "{title}"\nstart: {start}\nlocation:\n  name: "Rathaus"\n  city: Ort\n'
        f'region: {region}\norganiser: "Bündnis"\nstatus: {status}\n'
        f'summary: "Worum es bei {title} geht."\n---\nMehr zu {title}.\n'
    )


def tag_events(root: Path, topic: str) -> None:
    """Give each of the five events the one topic `topic`."""
    for slug, region, start, title in EVENTS:
        text = event_file(region, start, title).replace("status:", f"topics: [{topic}]\nstatus:")
        (root / "content" / "events" / f"{slug}.md").write_text(text, encoding="utf-8")


@pytest.fixture
def site(site_copy: Path) -> Path:
    """The sample site with the digest, five regional events and a three-region list."""
    (site_copy / "content" / "digests" / f"{SLUG}.md").write_text(DIGEST, encoding="utf-8")
    for slug, region, start, title in EVENTS:
        path = site_copy / "content" / "events" / f"{slug}.md"
        path.write_text(event_file(region, start, title), encoding="utf-8")
    return site_copy


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def shown(text: str) -> set[str]:
    """The event titles a mail's text shows."""
    return {title for title in TITLES if f"* {title}" in text}


def issue_path(root: Path, day: str) -> Path:
    return root / "content" / "issues" / f"{day}-{SLUG}.md"


def test_the_sample_digest_is_valid_and_its_dry_run_prints_the_issue(site_copy: Path) -> None:
    code, _, err = run_cli(site_copy, "check")
    assert code == 0, err
    code, out, err = run_cli(
        site_copy, "digest", "run", "termine-in-der-region", "--dry-run", "--date", "2020-04-07"
    )
    assert code == 0, err
    assert "dry run, not written" in err
    assert out.startswith("---\nnumber: 5\nsubject: Termine in Ihrer Region – April 2020\n")
    assert "from_digest: termine-in-der-region\n" in out
    assert "- 2020-04-16-schwerpunktkonferenz-sprachliche-und-berufliche-integration\n" in out
    assert not list((site_copy / "content" / "issues").glob("*termine-in-der-region*"))


@pytest.mark.slow
@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_each_person_gets_exactly_their_regions_items_over_smtp(site: Path) -> None:
    import_people(site, "people.csv", PEOPLE)
    code, out, err = run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")
    assert code == 0, err
    assert out == f"created content/issues/2020-09-01-{SLUG}.md (5 item(s))\n"
    code, _, err = run_cli(site, "check")
    assert code == 0, err  # an ordinary issue: the gate checks it like any other
    handler = Handler()
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        code, out, err = run_cli(site, "send", f"2020-09-01-{SLUG}", "--now", "--transport", url)
    assert code == 0, out + err
    texts = {r.rcpt_tos[0]: text_of(parse(r.data)) for r in handler.received}
    land = "Landeskonferenz"
    assert {address: shown(text) for address, text in texts.items()} == {
        "anna@example.org": {"Dialog Braunschweig", "Werkstatt BS", land},
        "bernd@example.org": {"Dialog Lüneburg", land},
        "carla@example.org": {"Treffen Weser-Ems", land},
        "dora@example.org": {land},
        "emil@example.org": TITLES,
    }
    # Headings only for regions with items: Leine-Weser has none, so nobody sees it.
    assert all("\nLeine-Weser\n" not in text for text in texts.values())
    assert "\nBraunschweig\n-----" in texts["anna@example.org"]
    assert "\nLüneburg\n" not in texts["anna@example.org"]
    assert "\nLandesweit\n" in texts["dora@example.org"]
    html = parse(handler.received[0].data).get_body(("html",))
    assert html is not None and "Landeskonferenz" in html.get_content()


@pytest.mark.slow
@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_a_reader_whose_topics_match_nothing_gets_no_mail_and_is_skipped(site: Path) -> None:
    tag_events(site, "arbeit")
    people = "email,name,topics,regions\nanna@example.org,Anna,arbeit,\n"
    people += "fritz@example.org,Fritz,kultur,\n"  # no item has his topic
    import_people(site, "people.csv", people)
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")[0] == 0
    issue = f"2020-09-01-{SLUG}"
    handler = Handler()
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        code, out, err = run_cli(site, "send", issue, "--now", "--transport", url)
    assert code == 0, out + err
    assert f"{issue}: 1 sent, 0 failed, 1 skipped, 0 waiting" in out
    # Fritz's view has no section and no award: no intro-only mail for him.
    assert [r.rcpt_tos for r in handler.received] == [["anna@example.org"]]
    assert shown(text_of(parse(handler.received[0].data))) == TITLES
    code, out, err = run_cli(site, "status", issue, "--json")
    assert code == 0, err
    counts = json.loads(out)["counts"]
    assert (counts["sent"], counts["skipped"]) == (1, 1)
    code, out, err = run_cli(site, "status", issue)
    assert "fritz@example.org: skipped after 1 attempt(s): nothing in this digest" in out


@pytest.mark.database
def test_approve_lists_each_distinct_view_of_a_digest(site: Path) -> None:
    tag_events(site, "arbeit")
    people = PEOPLE + "fritz@example.org,Fritz,kultur,\ngerd@example.org,Gerd,arbeit,\n"
    import_people(site, "people.csv", people)
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")[0] == 0
    code, out, err = run_cli(site, "approve", f"2020-09-01-{SLUG}", "--by", "Erika Muster")
    assert code == 0, err
    # The approver sees what goes out: each view once, with its items and readers.
    assert out.split("6 distinct view(s) of the digest:\n")[1].splitlines() == [
        "  landesweit, braunschweig, lueneburg, weser-ems (topics all | arbeit): "
        "5 item(s), 2 recipient(s)",
        "  nothing (topics kultur): 1 recipient(s), skipped in the send",
        "  landesweit (topics all): 1 item(s), 1 recipient(s)",
        "  landesweit, braunschweig (topics all): 3 item(s), 1 recipient(s)",
        "  landesweit, lueneburg (topics all): 2 item(s), 1 recipient(s)",
        "  landesweit, weser-ems (topics all): 2 item(s), 1 recipient(s)",
    ]


def test_without_statewide_items_only_the_regions_with_items_get_the_issue(site: Path) -> None:
    (site / "content" / "events" / "2020-09-25-konferenz-land.md").unlink()
    code, out, err = run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01", "--dry-run")
    assert code == 0, err
    # Leine-Weser readers would get a mail without items: the issue does not go to them.
    assert "\nregions:\n- braunschweig\n- lueneburg\n- weser-ems\n" in out


def test_a_view_is_rendered_once_for_every_reader_who_shares_it(site: Path) -> None:
    run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")
    config = load_config(site / "comms.toml")
    content, _ = read_site(config)
    editions = issue_editions(config, content, content.issues[f"2020-09-01-{SLUG}"], "s" * 40)
    assert editions.personal is not None
    for n in range(30):
        # Leine-Weser has no items: its readers share the view of those who chose nothing
        # but the statewide region.
        regions = ("braunschweig", " leine-weser ", " landesweit ")[n % 3]
        editions.build(Recipient(f"u{n}", f"p{n}@example.org", regions=regions))
    assert len(editions.personal.factories) == 2


def test_nothing_twice_but_changes_come_again_marked(site: Path) -> None:
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")[0] == 0
    land = site / "content" / "events" / "2020-09-25-konferenz-land.md"
    land.write_text(
        event_file("landesweit", "2020-10-20 10:00", "Landeskonferenz", "verschoben"), "utf-8"
    )
    fresh = site / "content" / "events" / "2020-10-10-neu-lueneburg.md"
    fresh.write_text(event_file("lueneburg", "2020-10-10 10:00", "Neu in Lüneburg"), "utf-8")
    code, out, err = run_cli(site, "digest", "run", SLUG, "--date", "2020-10-06", "--dry-run")
    assert code == 0, err
    # The Braunschweig workshop (8 October) was in September's issue unchanged: not again.
    assert "events:\n- 2020-10-10-neu-lueneburg\n- 2020-09-25-konferenz-land\n" in out
    assert "werkstatt-braunschweig" not in out
    assert "event/2020-09-25-konferenz-land: 2020-10-20T10:00:00+02:00|postponed" in out
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-10-06")[0] == 0
    config = load_config(site / "comms.toml")
    content, _ = read_site(config)
    issue = content.issues[f"2020-10-06-{SLUG}"]
    rendered = issue_editions(config, content, issue, "s" * 40).rendered["de"]
    assert "Verschoben" in rendered.html  # the change is marked


def test_a_rerun_of_the_same_day_keeps_the_file_and_a_crash_leaves_none(site: Path) -> None:
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")[0] == 0
    path = issue_path(site, "2020-09-01")
    edited = path.read_text("utf-8").replace("Liebe Leserinnen", "Hallo")
    path.write_text(edited, "utf-8")
    code, out, err = run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")
    assert (code, out) == (0, "")
    assert "exists; left as it is" in err
    assert path.read_text("utf-8") == edited
    assert not list(path.parent.glob(".*.tmp"))


def test_fewer_than_min_items_writes_nothing(site: Path) -> None:
    code, out, err = run_cli(site, "digest", "run", SLUG, "--date", "2021-03-02")
    assert (code, out) == (0, "")
    assert "nothing composed for 2021-03-02: 0 new or changed item(s), fewer than min_items 2" in (
        err
    )
    assert not issue_path(site, "2021-03-02").exists()


def test_check_reports_digest_errors_at_path_and_line(site_copy: Path) -> None:
    bad = site_copy / "content" / "digests" / "kaputt.md"
    bad.write_text(
        "---\ntitle: x\nkinds: [events, klatsch]\nhorizon: 6 fortnights\n"
        "cadence: monthly on the fifth Tuesday\nsubject: 'Hallo {year}'\npreheader: p\n"
        "regions: [lüneburg]\ncompose_at: '25:00'\n---\nText\n",
        encoding="utf-8",
    )
    code, out, _ = run_cli(site_copy, "check")
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("content/digests/kaputt.md")]
    assert lines == [
        "content/digests/kaputt.md:3: field 'kinds': expected one of 'events', 'practices' or "
        "'awards', got 'klatsch'",
        "content/digests/kaputt.md:4: field 'horizon': horizon '6 fortnights' not understood; "
        "write e.g. '6 weeks' or '42 days'",
        "content/digests/kaputt.md:5: field 'cadence': cadence 'monthly on the fifth Tuesday' "
        "not understood; write 'weekly on Tuesday' or 'monthly on the first Tuesday'",
        "content/digests/kaputt.md:6: field 'subject': unknown placeholder '{year}' "
        "(known: {date}, {month})",
        "content/digests/kaputt.md:8: field 'regions': unknown region 'lüneburg' (known: "
        "braunschweig, landesweit, leine-weser, lueneburg, weser-ems); did you mean 'lueneburg'?",
        "content/digests/kaputt.md:9: field 'compose_at': expected a time of day like 07:00, "
        "got '25:00'",
    ]
    code, _, err = run_cli(site_copy, "digest", "run", "kaputt")
    assert code == 1
    assert "digest 'kaputt' has errors; nothing composed" in err


@pytest.fixture
def handles() -> Iterator[list[SchedulerHandle]]:
    """Schedulers a test started; shut down at the end even when the test fails."""
    started: list[SchedulerHandle] = []
    yield started
    for handle in started:
        handle.shutdown()
        handle.store.close()


@pytest.mark.slow
@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_the_scheduler_composes_at_its_time_then_sends_like_any_issue(
    site: Path, handles: list[SchedulerHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    import_people(site, "people.csv", PEOPLE)
    definition = site / "content" / "digests" / f"{SLUG}.md"
    definition.write_text(DIGEST.replace("min_items: 2", "send_at: '10:00'"), "utf-8")
    issue = f"2020-09-01-{SLUG}"
    with time_machine.travel(berlin(2020, 9, 1, 6, 59, 50), tick=True) as clock:
        code, out, _ = run_cli(site, "schedule")
        assert code == 0
        assert (
            "Di., 1. September 2020, 07:00 Uhr  compose digest „Termine in den Regionen“ "
            f"({SLUG}), to send at 10:00 once ready"
        ) in out
        config, store = open_site(site)
        handle = start_scheduler(config, store)
        assert handle is not None
        handles.append(handle)
        runs = {job.id: job.next_run_time.isoformat() for job in handle.jobs()}
        assert runs[f"digest:{SLUG}@2020-09-01"] == "2020-09-01T07:00:00+02:00"
        clock.move_to(berlin(2020, 9, 1, 7, 0, 1))
        handle.wakeup()
        wait_for(lambda: ("ran", f"digest:{SLUG}@2020-09-01") in handle.events)
        assert issue_path(site, "2020-09-01").exists()
        # The listener syncs after the run: the issue's send and the digest's next run.
        wanted = {f"send:{issue}", f"digest:{SLUG}@2020-10-06"}
        wait_for(lambda: wanted <= {job.id for job in handle.jobs()})
        runs = {job.id: job.next_run_time.isoformat() for job in handle.jobs()}
        assert runs[f"digest:{SLUG}@2020-10-06"] == "2020-10-06T07:00:00+02:00"
        assert runs[f"send:{issue}"] == "2020-09-01T10:00:00+02:00"
        clock.move_to(berlin(2020, 9, 1, 10, 0, 1))
        handle.wakeup()
        wait_for(lambda: ("ran", f"send:{issue}") in handle.events)
        handles.remove(handle)
        handle.shutdown()
        store.close()
    assert len(outbox(site, issue)) == 5
    # Once: a second run for the same day (another host, a restart) finds the file.
    due = berlin(2020, 9, 1, 7).isoformat()
    assert compose_digest(str(site / "comms.toml"), SLUG, due) == "exists"


@pytest.mark.database
def test_a_composed_issue_waits_for_approval_like_any_other(site: Path) -> None:
    import_people(site, "people.csv", PEOPLE)
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")[0] == 0
    code, out, err = run_cli(
        site, "send", f"2020-09-01-{SLUG}", "--now", "--transport", "smtp://127.0.0.1:9"
    )
    assert (code, out) == (1, "")
    assert f"issue '2020-09-01-{SLUG}' is not approved" in err
    assert "nothing sent" in err


def test_a_reader_sees_only_items_of_their_topics(site: Path) -> None:
    bs = site / "content" / "events" / "2020-09-10-dialog-braunschweig.md"
    bs.write_text(
        event_file("braunschweig", "2020-09-10 10:00", "Dialog Braunschweig").replace(
            "region: braunschweig\n", "region: braunschweig\ntopics: [sprache]\n"
        ),
        "utf-8",
    )
    assert run_cli(site, "digest", "run", SLUG, "--date", "2020-09-01")[0] == 0
    config = load_config(site / "comms.toml")
    content, _ = read_site(config)
    issue = content.issues[f"2020-09-01-{SLUG}"]
    order = list(config.settings.regions)
    arbeit = sections(content, issue, config.tz, order, Reader.of(" braunschweig ", " arbeit "))
    # Items without topics are for everyone; the language dialogue is not for "arbeit".
    assert [(s.region, s.uids) for s in arbeit] == [
        ("landesweit", ("event/2020-09-25-konferenz-land",)),
        ("braunschweig", ("event/2020-10-08-werkstatt-braunschweig",)),
    ]
    sprache = sections(content, issue, config.tz, order, Reader.of(" braunschweig ", " sprache "))
    assert [s.uids for s in sprache][1] == (
        "event/2020-09-10-dialog-braunschweig",
        "event/2020-10-08-werkstatt-braunschweig",
    )


def test_a_translated_digest_definition_is_a_warning_not_a_crash(site_copy: Path) -> None:
    folder = site_copy / "content" / "digests"
    (folder / "termine-in-der-region.en.md").write_text(
        "---\ntitle: Dates\nsubject: Dates\npreheader: p\n---\nHello\n", encoding="utf-8"
    )
    code, out, _ = run_cli(site_copy, "check")
    assert code == 0
    assert (
        "content/digests/termine-in-der-region.en.md:1: warning: a digest has no translations "
        "(translate the issues it composes); ignored"
    ) in out


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("monthly on the first Tuesday", date(2020, 9, 2), date(2020, 10, 6)),
        ("monatlich am letzten Freitag", date(2020, 2, 1), date(2020, 2, 28)),
        ("weekly on Monday", date(2020, 9, 2), date(2020, 9, 7)),
        ("wöchentlich dienstags", date(2020, 9, 1), date(2020, 9, 1)),
    ],
)
def test_cadences_name_their_run_days(text: str, after: date, expected: date) -> None:
    assert parse_cadence(text).next_on_or_after(after) == expected
