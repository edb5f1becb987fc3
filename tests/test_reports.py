"""`comms report ISSUE`: counts from the ledger, the reach snapshot, and the anonymous
counters (archive views, unsubscribes per issue, erasures) on both databases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests
import sqlalchemy as sa

from comms.core.clock import now_utc
from comms.core.config import Config, load_config
from comms.core.languages import site_editions
from comms.db.engine import make_engine, upgrade
from comms.db.feedback import BounceEvent
from comms.db.outcomes import Outcome
from comms.db.people import Consent, NewSubscriber
from comms.db.status import DeliveryStatus
from comms.db.store import Store, open_store
from comms.db.tables import (
    campaign_reach,
    campaigns,
    consent,
    daily_counts,
    deliveries,
    subscribers,
)
from comms.reports.audience_report import audience_report
from comms.reports.counting import ViewCounter

from .databases import Databases
from .ledgerkit import IMPORT, run_cli, schema_drift
from .smtp_servers import Handler
from .test_serve import server, wait_for_mail  # noqa: F401  (the `comms serve` fixture)
from .webkit import Web, open_web

pytestmark = pytest.mark.database

ISSUE = "2026-11-newsletter"
PEOPLE = [
    NewSubscriber("a@example.org", regions=("hannover",), topics=("sprache",)),
    NewSubscriber("b@example.org", regions=("hannover", "emsland"), topics=("sprache", "arbeit")),
    NewSubscriber("c@example.org", language="en", regions=(), topics=("arbeit",)),
    NewSubscriber("d@example.org"),
]


#: The key `run_cli` gives the commands, so that they open the same database.
SECRET = "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
LANGUAGES = {"de": {"label": "Deutsch"}, "en": {"label": "English"}}


def config_of(root: Path, **overrides: object) -> Config:
    """An empty comms.toml in `root` read with the key `run_cli` gives the commands."""
    (root / "comms.toml").write_text("", encoding="utf-8")
    environ = {"COMMS_SECRET_KEY": SECRET}
    return load_config(root / "comms.toml", overrides=overrides, environ=environ)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The sample people, active, in a fresh database (tmp_path holds its comms.toml)."""
    opened = open_store(config_of(tmp_path))
    opened.import_subscribers(enumerate(PEOPLE), IMPORT, confirmed=True)
    yield opened
    opened.close()


def started(store: Store, root: Path) -> int:
    """Start the issue's campaign for everyone, in German and English editions; its id."""
    editions = site_editions(config_of(root, languages=LANGUAGES))
    campaign, created = store.ledger.start(ISSUE, "h", [], [], now_utc(), editions)
    assert created
    return campaign.id


def report(root: Path, *args: str) -> dict[str, object]:
    code, out, err = run_cli(root, "report", ISSUE, "--json", *args)
    assert code == 0, out + err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_the_new_tables_match_the_migration(store: Store) -> None:
    assert schema_drift(store) == []


def test_counters_keep_no_person_address_or_cookie(store: Store) -> None:
    # The whole table: what is counted, which issue, which edition or link, which day, how many.
    assert [c.name for c in daily_counts.columns] == ["kind", "subject", "item", "day", "count"]
    assert "subscriber_id" not in campaign_reach.columns


def test_report_counts_outcomes_feedback_and_the_send_rate(store: Store, tmp_path: Path) -> None:
    cid = started(store, tmp_path)
    now = now_utc()
    claimed = store.ledger.claim(cid, "me", 10, now, now + timedelta(minutes=5))
    assert len(claimed) == 4
    writer = store.ledger.writer("test", "me")
    later = now + timedelta(minutes=2)
    writer.write(
        [
            Outcome(claimed[0].delivery_id, DeliveryStatus.SENT, "<1@x>"),
            Outcome(claimed[1].delivery_id, DeliveryStatus.SENT, "<2@x>"),
            Outcome(claimed[2].delivery_id, DeliveryStatus.FAILED, error="550 no such user"),
            Outcome(
                claimed[3].delivery_id,
                DeliveryStatus.QUEUED,
                error="451 later",
                next_attempt_at=later,
            ),  # fmt: skip
        ],
        later,
    )
    writer.close()
    first = store.find("a@example.org")
    assert first is not None
    hard = BounceEvent("dsn-1", "hard", "dsn", "5.1.1", delivery_id=claimed[0].delivery_id,
                       campaign_id=cid)  # fmt: skip
    store.record_feedback(first.uid, hard, Consent("bounce", "test"))

    data = report(tmp_path)
    assert data["delivered"] == 2
    assert (data["deferred"], data["failed"], data["recipients"]) == (1, 1, 4)
    assert data["bounced"] == {"hard": 1, "soft": 0}
    assert data["complaints"] == 0
    send = data["send"]
    assert isinstance(send, dict)
    assert send["duration_seconds"] is not None and send["rate_per_minute"] is not None
    code, out, _ = run_cli(tmp_path, "report", ISSUE)
    assert code == 0
    assert f"{ISSUE}: sending, 4 recipient(s)" in out
    assert "  delivered 2, deferred 1, failed 1, skipped 0" in out


def test_reach_is_counted_when_the_send_starts_and_stays(store: Store, tmp_path: Path) -> None:
    started(store, tmp_path)
    expected = {
        "editions": {"de": 3, "en": 1},
        "regions": {"": 2, "hannover": 2, "emsland": 1},
        "topics": {"arbeit": 2, "sprache": 2, "": 1},
    }
    assert report(tmp_path)["reach"] == expected
    # Erasing a person and changing another's choices later does not rewrite whom it reached.
    store.erase("b@example.org")
    person = store.find("a@example.org")
    assert person is not None
    store.update_preferences(person.uid, (), ("emsland",), "de")
    assert report(tmp_path)["reach"] == expected


def test_an_issue_never_sent_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    code, _, err = run_cli(tmp_path, "report", "no-such-issue")
    assert code == 1
    assert err == "error: issue 'no-such-issue' was never sent: there is nothing to report yet\n"


def test_erasures_are_counted_without_the_person(store: Store) -> None:
    store.erase("a@example.org")
    store.erase("b@example.org")
    c = daily_counts.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(c.kind, c.subject, c.item, c.count)).all()
    today = now_utc().date()
    assert sorted((*r, today) for r in rows) == [
        ("audience", "erasure", "", 2, today),
        ("audience", "import", "", 4, today),
    ]


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path) as opened:
        yield opened


def test_an_unsubscribe_through_an_issues_link_counts_for_that_issue(web: Web) -> None:
    person = web.activate("leser@example.org")
    web.store.ledger.start(ISSUE, "h", [], [], now_utc())
    token = web.subs.unsubscribe_token(person)
    # A made-up issue is not counted (no row), the real one is; a second click changes nothing.
    other = web.subs.unsubscribe_token(web.activate("leserin@example.org"))
    made_up = web.client.post(f"/unsubscribe/{other}?issue=made-up",
                              data={"List-Unsubscribe": "One-Click"})  # fmt: skip
    assert made_up.status_code == 200
    page = web.client.get(f"/unsubscribe/{token}?issue={ISSUE}").get_data(as_text=True)
    assert f'action="../unsubscribe/{token}?issue={ISSUE}"' in page  # the button keeps the issue
    for _ in range(2):
        done = web.client.post(f"/unsubscribe/{token}?issue={ISSUE}",
                               data={"List-Unsubscribe": "One-Click"})  # fmt: skip
        assert done.status_code == 200
    with web.store.engine.connect() as conn:
        rows = conn.execute(sa.select(daily_counts).where(daily_counts.c.kind != "audience")).all()
    found = [(r.kind, r.subject, r.item, r._mapping["count"]) for r in rows]
    assert found == [("unsubscribe", ISSUE, "", 1)]
    assert rows[0].day == now_utc().date()


@pytest.mark.slow
@pytest.mark.usefixtures("without_approval")
def test_views_and_unsubscribes_over_real_http(
    server: tuple[str, Path, dict[str, str], Handler],  # noqa: F811
) -> None:
    """`comms serve` counts GETs of a sent issue's page per day and the one-click unsubscribe
    through the mail's own header; the report shows both."""
    base, site, env, handler = server
    sample = "2020-02-newsletter"
    code, out, err = run_cli(site, "subscribers", "add", "leser@example.org", "--confirmed",
                             "--consent-note", "Test", env=env)  # fmt: skip
    assert code == 0, out + err
    code, out, err = run_cli(site, "send", sample, "--now", env=env)
    assert code == 0, out + err
    [newsletter] = [m for m in wait_for_mail(handler, 1) if m["List-Unsubscribe"]]
    page = f"{base}/issues/{sample}/"
    # The server's own first build may end after the send's: build again until the page is
    # there (asked with HEAD, which is not counted).
    for _ in range(20):
        if requests.head(page, timeout=30).status_code == 200:
            break
        assert run_cli(site, "build", env=env)[0] == 0
    first = requests.get(page, timeout=5)
    assert first.status_code == 200
    again = requests.get(page, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
    assert again.status_code == 304  # a reader's cached copy is a view too
    assert requests.head(page, timeout=5).status_code == 200  # HEAD reads nothing: not counted
    assert requests.get(f"{base}/issues/", timeout=5).status_code == 200  # not an issue's page
    unsubscribe = re.fullmatch(r"<([^>]+)>", newsletter["List-Unsubscribe"])
    assert unsubscribe is not None and unsubscribe.group(1).endswith(f"?issue={sample}")
    one_click = requests.post(unsubscribe.group(1), data={"List-Unsubscribe": "One-Click"},
                              allow_redirects=False, timeout=5)  # fmt: skip
    assert one_click.status_code == 200

    code, out, err = run_cli(site, "report", sample, "--json", env=env)
    assert code == 0, out + err
    data = json.loads(out)
    assert (data["delivered"], data["unsubscribes"]) == (1, 1)
    today = now_utc().date().isoformat()
    assert data["views"] == {"total": 2, "per_day": [{"day": today, "edition": "", "count": 2}]}


def test_only_an_issues_own_page_is_a_view(tmp_path: Path) -> None:
    counter = ViewCounter(config_of(tmp_path, languages=LANGUAGES), sa.create_engine("sqlite://"))
    assert counter.issue_page("issues/x/") == ("x", "")
    assert counter.issue_page("issues/x/index.html") == ("x", "")
    assert counter.issue_page("en/issues/x/") == ("x", "en")
    for other in ("issues/", "issues/x/email.html", "fr/issues/x/", "events/x/", "feed.xml"):
        assert counter.issue_page(other) is None, other


def test_audience_history_outlives_erasure_and_purge(web: Web) -> None:
    """Sign-ups, confirmations, unsubscribes and erasures are counted when they happen: erasing
    a person or purging a stale sign-up later does not shrink the month's figures."""
    first = web.activate("eins@example.org")
    web.activate("zwei@example.org")
    web.sign_up("drei@example.org")  # never confirmed
    token = web.subs.unsubscribe_token(first)
    assert web.client.post(f"/unsubscribe/{token}").status_code == 200
    web.store.erase("eins@example.org")
    assert web.store.purge_pending(now_utc() + timedelta(days=1)) == 1
    today = now_utc().date()
    found = audience_report(web.store.engine, today - timedelta(days=40), today)
    data = found.to_json()
    month = f"{today.year:04d}-{today.month:02d}"
    assert data["months"][-1] == {
        "month": month, "signups": 3, "confirmations": 2, "imports": 0, "unsubscribes": 1,
        "bounces": 0, "complaints": 0, "erasures": 1,
    }  # fmt: skip
    assert len(data["months"]) in (2, 3)  # every month of the period, also empty ones
    assert data["confirmation_rate"] == 0.667
    assert data["subscribers"] == {"active": 1}
    assert data["active"]["languages"] == {"de": 1}
    assert found.csv_text().splitlines()[-1] == f"{month},3,2,0,1,0,0,1"


def test_audience_report_on_the_command_line_writes_a_csv(store: Store, tmp_path: Path) -> None:
    out_file = tmp_path / "jahresbericht.csv"
    today = now_utc().date()
    period = ["--from", f"{today.year}-01-01", "--to", today.isoformat()]
    code, out, err = run_cli(tmp_path, "report", "audience", *period, "--json", "--csv",
                             str(out_file))  # fmt: skip
    assert code == 0, out + err
    data = json.loads(out)
    assert data["active"]["regions"] == {"": 2, "hannover": 2, "emsland": 1}
    assert data["active"]["topics"] == {"arbeit": 2, "sprache": 2, "": 1}
    assert data["confirmation_rate"] is None  # imports are no sign-ups
    lines = out_file.read_text(encoding="utf-8").splitlines()
    header = "month,signups,confirmations,imports,unsubscribes,bounces,complaints,erasures"
    assert lines[0] == header
    assert lines[-1] == f"{today.year:04d}-{today.month:02d},0,0,4,0,0,0,0"
    code, out, _ = run_cli(tmp_path, "report", "audience")
    assert code == 0
    assert "  confirmation rate: -\n" in out
    code, _, err = run_cli(tmp_path, "report", "audience", "--from", "2026-02-01",
                           "--to", "2026-01-01")  # fmt: skip
    assert code == 2 and "--to lies before --from" in err
    code, _, err = run_cli(tmp_path, "report", ISSUE, "--from", "2026-01-01")
    assert code == 2 and "--from, --to and --csv belong to `comms report audience`" in err


def test_the_migration_counts_what_came_before(database: Databases, tmp_path: Path) -> None:
    """Upgrading a database with people, consent and a sent campaign fills the reach and the
    audience's history from them."""
    engine = make_engine(database.url_for(f"sqlite:///{tmp_path / 'comms.db'}"))
    upgrade(engine, "0007_editions")
    then = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # 1 April in Berlin, 31 March in UTC
    with engine.begin() as conn:
        cid = conn.execute(
            sa.insert(campaigns).values(slug="alt", content_hash="h", status="done",
                                        recipients=2, created_at=then, updated_at=then)
            .returning(campaigns.c.id)
        ).scalar_one()  # fmt: skip
        for n, (regions, action) in enumerate(((" harz ", "import"), ("", "request"))):
            sid = conn.execute(
                sa.insert(subscribers).values(uid=f"u{n}", email=f"p{n}@example.org",
                                              suppression_key=f"k{n}", language="de",
                                              regions=regions, status="pending",
                                              created_at=then, updated_at=then)
                .returning(subscribers.c.id)
            ).scalar_one()  # fmt: skip
            conn.execute(sa.insert(consent).values(subscriber_id=sid, action=action, at=then,
                                                   source="alt"))  # fmt: skip
            conn.execute(sa.insert(deliveries).values(campaign_id=cid, subscriber_id=sid,
                                                      status="sent", queued_at=then))  # fmt: skip
    upgrade(engine)
    r = campaign_reach.c
    c = daily_counts.c
    with engine.connect() as conn:
        reach = conn.execute(sa.select(r.regions, r.recipients).order_by(r.regions)).all()
        counted = conn.execute(sa.select(c.kind, c.subject, c.day, c.count).order_by(c.subject))
        assert [tuple(row) for row in reach] == [("", 1), (" harz ", 1)]
        assert [tuple(row) for row in counted] == [
            ("audience", "import", date(2026, 3, 31), 1),
            ("audience", "request", date(2026, 3, 31), 1),
        ]
    engine.dispose()


@pytest.fixture
def counting_clicks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mail.count_clicks` on, for the server and for the send alike."""
    monkeypatch.setenv("COMMS_MAIL_COUNT_CLICKS", "true")


@pytest.mark.slow
@pytest.mark.usefixtures("without_approval", "counting_clicks")
def test_counted_links_redirect_only_the_issues_own_links(
    server: tuple[str, Path, dict[str, str], Handler],  # noqa: F811
) -> None:
    base, site, env, handler = server
    sample = "2020-02-newsletter"
    code, out, err = run_cli(site, "subscribers", "add", "leser@example.org", "--confirmed",
                             "--consent-note", "Test", env=env)  # fmt: skip
    assert code == 0, out + err
    assert run_cli(site, "send", sample, "--now", env=env)[0] == 0
    [newsletter] = [m for m in wait_for_mail(handler, 1) if m["List-Unsubscribe"]]
    body = newsletter.get_body(("html",))
    assert body is not None
    redirect = re.escape(base) + r"/r/[^/]+/[0-9a-f]{16}"
    counted = sorted(set(re.findall(redirect, body.get_content())))
    assert len(counted) >= 2
    for _ in range(20):  # the server's own first build may end after the send's (see above)
        if requests.head(counted[0], timeout=30).status_code == 302:
            break
        assert run_cli(site, "build", env=env)[0] == 0
    first, second = counted[0], counted[1]
    targets = set()
    for url, times in ((first, 5), (second, 4)):
        for _ in range(times):
            answer = requests.get(url, allow_redirects=False, timeout=5)
            assert answer.status_code == 302 and answer.headers["Cache-Control"] == "no-store"
            assert "Set-Cookie" not in answer.headers
            targets.add(answer.headers["Location"])
    assert len(targets) == 2 and not any("/r/" in t for t in targets)
    # Neither a made-up id nor a real id under another issue leads anywhere.
    link = first.rsplit("/", 1)[1]
    for wrong in (f"{base}/r/{sample}/0123456789abcdef", f"{base}/r/2019-11-newsletter/{link}"):
        assert requests.get(wrong, allow_redirects=False, timeout=5).status_code == 404

    code, out, err = run_cli(site, "report", sample, "--json", env=env)
    assert code == 0, out + err
    clicks = json.loads(out)["clicks"]  # 4 clicks are below the minimum of 5: not shown
    assert clicks == [{"link": link, "url": requests.head(first, timeout=5).headers["Location"],
                       "count": 5}]  # fmt: skip


def test_charts_are_svg_files_with_their_figures_as_tables(store: Store, tmp_path: Path) -> None:
    started(store, tmp_path)
    folder = tmp_path / "diagramme"
    code, out, err = run_cli(tmp_path, "report", ISSUE, "--charts", str(folder))
    assert code == 0, out + err
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "outcome.svg", "regions.svg"]
    outcome = ElementTree.parse(folder / "outcome.svg").getroot()  # well-formed SVG
    assert outcome.tag == "{http://www.w3.org/2000/svg}svg"
    title = outcome.find(".//{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text == "Ergebnis der Zustellungen"
    svg = (folder / "outcome.svg").read_text(encoding="utf-8")
    assert "xlink:href='http" not in svg and 'xlink:href="http' not in svg  # nothing fetched
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert '<img src="outcome.svg" alt="Ergebnis der Zustellungen"' in page
    assert "<script" not in page
    # The region chart's table: each region with its recipients (everyone still queued).
    assert "<caption>Die Zahlen des Diagramms: Empfänger nach Region</caption>" in page
    assert '<tr><th scope="row">Alle Regionen</th><td>2</td></tr>' in page
    assert '<tr><th scope="row">Zugestellt</th><td>0</td></tr>' in page

    folder = tmp_path / "jahresbericht"
    code, out, err = run_cli(tmp_path, "report", "audience", "--charts", str(folder))
    assert code == 0, out + err
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "regions.svg",
                                                        "subscribers.svg"]  # fmt: skip
    page = (folder / "index.html").read_text(encoding="utf-8")
    month = now_utc().strftime("%Y-%m")
    assert f'<tr><th scope="row">{month}</th><td>0</td><td>0</td><td>4</td>' in page
    assert '<th scope="col">Anmeldungen</th>' in page
