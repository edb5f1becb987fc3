"""`comms send` end to end: sample issue → real SMTP server (aiosmtpd) → parse what arrived."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from comms.core.clock import now_utc
from comms.core.config import load_config
from comms.sending.campaign import retry_due

from .conftest import ROOT
from .ledgerkit import run_cli
from .smtp_servers import Handler, free_port, smtp_server

# Sending mechanics on the sample site, whose comms.toml requires approval (test_desk.py's part).
pytestmark = [pytest.mark.database, pytest.mark.usefixtures("without_approval")]

ISSUE = "2020-02-newsletter"
PEOPLE = (
    "email,name,topics,regions\n"
    "anna@example.org,Anna,sprache,\n"
    "Bjoern@Bücher.Example.org,Björn,,weser-ems\n"
    "carla@example.org,,arbeit,lueneburg\n"
)
FAST = {"COMMS_DELIVERY_RETRY_BACKOFF_SECONDS": "0"}


def import_people(root: Path, name: str, csv: str) -> None:
    """Import the CSV text `csv` (written to `name`) as confirmed subscribers."""
    (root / name).write_text(csv, encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / name), "--confirmed",
        "--consent-note", "Testliste",
    )  # fmt: skip
    assert code == 0, err


@pytest.fixture
def site(site_copy: Path) -> Path:
    """The sample site with three confirmed subscribers."""
    import_people(site_copy, "people.csv", PEOPLE)
    return site_copy


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def status(root: Path) -> dict[str, object]:
    code, out, _ = run_cli(root, "status", ISSUE, "--json")
    assert code == 0
    data: dict[str, object] = json.loads(out)
    return data


def test_send_through_smtp_then_parse_what_arrived(site: Path) -> None:
    handler = Handler()
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        code, out, err = run_cli(site, "send", ISSUE, "--now", "--transport", url)
        assert code == 0, out + err
        assert out.splitlines() == [
            "Sending #3 „Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis“ "
            f"({ISSUE}): 3 recipient(s), 3 to send over 4 connection(s)",
            f"{ISSUE}: 3 sent, 0 failed, 0 skipped, 0 waiting",
        ]
        code, out, _ = run_cli(site, "send", ISSUE, "--now", "--transport", url)
    assert code == 0
    assert out == (
        f"nothing to send: every delivery of {ISSUE} is final "
        "(3 sent, 0 failed, 0 skipped, 0 waiting)\n"
    )
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "anna@example.org",
        "bjoern@xn--bcher-kva.example.org",
        "carla@example.org",
    ]
    for received in handler.received:
        message = parse(received.data)
        assert message["Subject"] == (
            "Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis"
        )
        assert message["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        assert message["List-Unsubscribe"].startswith("<https://newsletter.example.org/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"].endswith("@newsletter.example.org>")
        assert message.get_body(("plain",)) is not None
        html = message.get_body(("html",))
        assert html is not None and "Schwerpunktkonferenz" in html.get_content()
    ids = {parse(r.data)["Message-ID"] for r in handler.received}
    assert len(ids) == 3
    data = status(site)
    assert data["status"] == "done"
    assert data["counts"] == {
        "queued": 0, "sending": 0, "sent": 3, "failed": 0, "ambiguous": 0, "skipped": 0,
    }  # fmt: skip
    code, out, _ = run_cli(site, "subscribers", "show", "anna@example.org", "--json")
    person = json.loads(out)
    assert person["status"] == "active"
    assert person["deliveries"][0]["slug"] == ISSUE
    assert person["deliveries"][0]["status"] == "sent"


def test_bounce_temporary_failure_and_exit_3(site: Path) -> None:
    handler = Handler(
        rcpt_replies={
            "anna@example.org": "550 5.1.1 <anna@example.org>: no such user",
            "carla@example.org": "451 4.3.0 try again later",
        }
    )
    with smtp_server(handler) as port:
        code, out, err = run_cli(
            site, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}", env=FAST
        )
    assert code == 3, out + err
    lines = out.splitlines()
    assert lines[1] == f"{ISSUE}: 1 sent, 1 failed, 0 skipped, 1 waiting"
    assert lines[2].startswith("1 delivery(ies) wait for a retry, the next at ")
    assert lines[2].endswith(f"; run `comms send {ISSUE}` again then")
    data = status(site)
    assert data["counts"] == {
        "queued": 1, "sending": 0, "sent": 1, "failed": 1, "ambiguous": 0, "skipped": 0,
    }  # fmt: skip
    errors = data["errors"]
    assert isinstance(errors, list)
    assert {e["email"]: e["attempts"] for e in errors} == {
        "anna@example.org": 1,
        "carla@example.org": 3,
    }
    code, out, _ = run_cli(site, "status", ISSUE)
    lines = out.splitlines()
    assert lines[0] == f"{ISSUE}: waiting, 3 recipient(s)"
    assert lines[1:7] == [
        "  queued           1",
        "  sending          0",
        "  sent             1",
        "  failed           1",
        "  ambiguous        0",
        "  skipped          0",
    ]
    assert lines[7].startswith("next retry: ")
    assert lines[8] == "recent errors:"
    assert (
        f"  anna@example.org: failed after 1 attempt(s): 127.0.0.1:{port}: RCPT TO: 550 5.1.1 "
        "<anna@example.org>: no such user" in lines
    )
    code, out, _ = run_cli(site, "subscribers", "show", "anna@example.org", "--json")
    person = json.loads(out)
    assert person["status"] == "bounced"
    assert person["suppressed"] == "bounced"


def test_policy_rejection_stops_with_exit_1(site: Path) -> None:
    reply = "550 5.7.26 Unauthenticated email from example.org is not accepted"
    handler = Handler(rcpt_replies={"anna@example.org": reply, "carla@example.org": reply})
    with smtp_server(handler) as port:
        code, out, err = run_cli(
            site,
            "send",
            ISSUE,
            "--now",
            "--transport",
            f"smtp://127.0.0.1:{port}",
            "--concurrency",
            "1",
        )
    assert code == 1
    assert err.startswith("error: campaign stopped: the server rejects our mail as a matter of ")
    assert err.endswith(f"fix the cause and run `comms send {ISSUE}` again\n")
    data = status(site)
    assert data["status"] == "paused"
    counts = data["counts"]
    assert isinstance(counts, dict)
    assert counts["failed"] == 0 and counts["queued"] >= 2


def test_unreachable_server_stops_with_exit_1(site: Path) -> None:
    url = f"smtp://127.0.0.1:{free_port()}"
    code, out, err = run_cli(site, "send", ISSUE, "--now", "--transport", url, env=FAST)
    assert code == 1, out
    assert err.startswith("error: campaign stopped: cannot reach the mail server: ")
    assert "3 deliveries stay queued" in err
    assert status(site)["counts"] == {
        "queued": 3, "sending": 0, "sent": 0, "failed": 0, "ambiguous": 0, "skipped": 0,
    }  # fmt: skip


def add_people(root: Path, count: int) -> None:
    """Import `count` more confirmed subscribers (no topics or regions: they get every issue)."""
    rows = "".join(f"p{n}@example.org,,,\n" for n in range(count))
    import_people(root, "more.csv", "email,name,topics,regions\n" + rows)


def assert_paused(root: Path, queued: int, failed: int) -> None:
    """The campaign is paused with `queued` rows due at once and `failed` bounces."""
    data = status(root)
    assert data["status"] == "paused"
    assert data["counts"] == {
        "queued": queued, "sending": 0, "sent": 0, "failed": failed, "ambiguous": 0, "skipped": 0,
    }  # fmt: skip
    assert data["next_attempt"] is None


@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_unreachable_is_no_attempt_and_the_rerun_sends_everything_at_once(site: Path) -> None:
    add_people(site, 47)
    url = f"smtp://127.0.0.1:{free_port()}"
    code, out, err = run_cli(site, "send", ISSUE, "--now", "--transport", url)
    assert code == 1, out
    assert err.startswith("error: campaign stopped: cannot reach the mail server: ")
    assert "50 deliveries stay queued" in err
    data = status(site)
    assert data["next_attempt"] is None  # due now, not in 30 minutes
    handler = Handler()
    with smtp_server(handler) as port:
        code, out, err = run_cli(
            site, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 0, err
    assert len(handler.received) == 50
    assert status(site)["counts"] == {
        "queued": 0, "sending": 0, "sent": 50, "failed": 0, "ambiguous": 0, "skipped": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("end of DATA", "554 5.6.0 message content rejected"),
        ("end of DATA", "552 5.3.4 message size exceeds fixed limit"),
        ("RCPT TO", "500 Error: command not recognized"),
        ("RCPT TO", "554 Transaction failed"),
    ],
)
def test_a_refused_message_pauses_the_campaign_and_bounces_nobody(
    site: Path, stage: str, reply: str
) -> None:
    handler = Handler()
    (handler.data_replies if stage == "end of DATA" else handler.rcpt_replies)["*"] = reply
    with smtp_server(handler) as port:
        code, _, err = run_cli(
            site, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 1
    assert err == (
        "error: campaign stopped: the server refuses our message or session, not the address "
        f"(nobody was marked bounced): 127.0.0.1:{port}: {stage}: {reply}; 3 deliveries stay "
        f"queued; fix the cause and run `comms send {ISSUE}` again\n"
    )
    assert_paused(site, queued=3, failed=0)
    for address in ("anna@example.org", "carla@example.org"):
        _, out, _ = run_cli(site, "subscribers", "show", address, "--json")
        person = json.loads(out)
        assert (person["status"], person["suppressed"]) == ("active", None)
    handler = Handler()
    with smtp_server(handler) as port:
        code, _, err = run_cli(
            site, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 0, err
    assert len(handler.received) == 3


def test_a_run_of_bounces_trips_the_breaker_and_keeps_the_rest(site: Path) -> None:
    add_people(site, 12)
    handler = Handler(rcpt_replies={"*": "550 5.1.1 no such user"})
    with smtp_server(handler) as port:
        code, _, err = run_cli(
            site,
            "send",
            ISSUE,
            "--now",
            "--transport",
            f"smtp://127.0.0.1:{port}",
            "--concurrency",
            "1",
        )
    assert code == 1
    assert err == (
        "error: campaign stopped: 10 recipients in a row were refused with no delivery in "
        "between, which points at the server or our mail rather than the addresses; the rest "
        f"were not marked bounced (last reply: 127.0.0.1:{port}: RCPT TO: 550 5.1.1 no such "
        f"user); 6 deliveries stay queued; fix the cause and run `comms send {ISSUE}` again\n"
    )
    assert_paused(site, queued=6, failed=9)
    people = ["anna@example.org", "Bjoern@Bücher.Example.org", "carla@example.org"]
    states = []
    for address in people + [f"p{n}@example.org" for n in range(12)]:
        code, out, _ = run_cli(site, "subscribers", "show", address, "--json")
        assert code == 0
        states.append(json.loads(out)["status"])
    assert sorted(states) == ["active"] * 6 + ["bounced"] * 9


def test_drop_after_data_is_ambiguous_and_retried_with_the_same_message_id(site: Path) -> None:
    handler = Handler(drop_after_data={"anna@example.org"})
    with smtp_server(handler) as port:
        code, _, _ = run_cli(
            site, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}", env=FAST
        )
    assert code == 3
    to_anna = [parse(r.data)["Message-ID"] for r in handler.received if "anna" in r.rcpt_tos[0]]
    assert len(to_anna) == 3  # first try + 2 in-run retries
    assert len(set(to_anna)) == 1
    counts = status(site)["counts"]
    assert isinstance(counts, dict) and counts["ambiguous"] == 1 and counts["sent"] == 2


def test_dry_run_and_proof_leave_the_ledger_alone(site: Path) -> None:
    handler = Handler()
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        code, out, _ = run_cli(site, "send", ISSUE, "--dry-run", "--now", "--rate", "2")
        assert code == 0
        assert out.splitlines() == [
            "Plan for #3 „Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis“ "
            f"({ISSUE}), nothing is sent:",
            "  recipients: 3",
            "  selected: every active subscriber",
            "  time: now, before its send_at Di., 4. Februar 2020, 09:00 Uhr (--now)",
            "  to send now: 3 in 1 batch(es) of up to 150",
            "  recipients per edition: de 3",
            "  connections: 4",
            "  estimated time: 0 min 2 s at 2 msg/s",
        ]
        code, out, _ = run_cli(
            site, "send", ISSUE, "--now", "--transport", url, "--to", "Red@Example.org"
        )
        assert code == 0
        assert out.startswith(f"proof of {ISSUE} (version ")
        assert out.endswith(
            f" sent to red@example.org via {url}; recorded (outside the list, the ledger is "
            "unchanged)\n"
        )
    assert [r.rcpt_tos for r in handler.received] == [["red@example.org"]]
    code, out, _ = run_cli(site, "status", ISSUE)
    assert code == 0 and out.startswith(f"{ISSUE}: not started (no campaign yet")


def test_draft_and_unknown_issue_are_refused(site: Path) -> None:
    code, _, err = run_cli(site, "send", "2020-04-newsletter")
    assert code == 1
    assert err == (
        "error: issue '2020-04-newsletter' is a draft; set `status: ready` to send it "
        "(proofs with --to work for drafts)\n"
    )
    code, _, err = run_cli(site, "send", "gibt-es-nicht")
    assert code == 1
    assert err.startswith(f"error: no issue 'gibt-es-nicht' in {site / 'content'} (known: ")


@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_demo_sends_the_next_issue_to_the_samples_once(site_copy: Path) -> None:
    shutil.copytree(ROOT / "samples", site_copy / "samples")
    code, out, err = run_cli(site_copy, "demo", env={"COMMS_SECRET_KEY": ""})
    assert code == 0, err
    assert err.startswith("warning: COMMS_SECRET_KEY is not set; generated a secret key")
    before, schedule = out.split("Schedule as of ")  # the demo ends with the schedule
    assert "no scheduled sends (no ready issue with a send_at still to come)" in schedule
    lines = before.splitlines()
    assert lines[-3] == "Subscribers: 5 sample subscriber(s) imported, 0 already there (5 active)"
    assert lines[-2] == (
        "Newsletter #3 „Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis“ "
        f"({ISSUE}): sent 5 now via file://{site_copy / 'var' / 'outbox'}"
    )
    files = sorted((site_copy / "var" / "outbox" / ISSUE).glob("*.eml"))
    assert len(files) == 5
    assert parse(files[0].read_bytes())["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    code, out, err = run_cli(site_copy, "demo", env={"COMMS_SECRET_KEY": ""})
    assert code == 0 and err == ""
    assert out.split("Schedule as of ")[0].splitlines()[-1] == (
        "Newsletter #3 „Termine 2020: Schwerpunktkonferenz am 16. April und Sonderpreis“ "
        f"({ISSUE}): nothing new to send (5 sent, 0 failed, 0 skipped, 0 waiting)"
    )


def test_retry_due_sends_what_waits_once_it_is_due(site: Path) -> None:
    """The scheduler's retry pass: nothing before the retry time, the waiting rows after it."""
    handler = Handler(rcpt_replies={"anna@example.org": "451 4.2.2 mailbox full"})
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        code, _, _ = run_cli(site, "send", ISSUE, "--now", "--transport", url, env=FAST)
        assert code == 3
        code, out, _ = run_cli(site, "status")
        assert out == f"{ISSUE}: waiting, 3 recipient(s); 1 queued, 2 sent\n"
        config = load_config(
            site / "comms.toml",
            overrides={"transport": url},
            environ={"COMMS_SECRET_KEY": "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"},
        )
        assert retry_due(config, now_utc()) == []
        handler.rcpt_replies.clear()
        reports = retry_due(config, now_utc() + timedelta(hours=1))
    assert [r.campaign.slug for r in reports] == [ISSUE]
    assert reports[0].exit_code == 0
    assert reports[0].counts == {"sent": 3}
    assert [r.rcpt_tos[0] for r in handler.received].count("anna@example.org") == 1


@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_retry_pass_goes_on_when_one_issue_was_edited(site: Path) -> None:
    """An issue edited after its campaign started holds only its own retries."""
    handler = Handler(rcpt_replies={"anna@example.org": "451 4.2.2 mailbox full"})
    other = "2019-11-newsletter"
    with smtp_server(handler) as port:
        url = f"smtp://127.0.0.1:{port}"
        for slug in (ISSUE, other):
            code, _, _ = run_cli(site, "send", slug, "--now", "--transport", url, env=FAST)
            assert code == 3
        edited = site / "content" / "issues" / f"{ISSUE}.md"
        edited.write_text(edited.read_text("utf-8") + "\nNachtrag.\n", "utf-8")
        config = load_config(
            site / "comms.toml",
            overrides={"transport": url},
            environ={"COMMS_SECRET_KEY": "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"},
        )
        handler.rcpt_replies.clear()
        reports = retry_due(config, now_utc() + timedelta(hours=1))
    assert [r.campaign.slug for r in reports] == [other]
    assert reports[0].exit_code == 0


def test_status_of_an_issue_not_sent_yet(site: Path) -> None:
    code, out, _ = run_cli(site, "status", "2019-11-newsletter", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "not started" and set(data["counts"].values()) == {0}
    code, out, _ = run_cli(site, "status", "2019-11-newsletter")
    expected = "2019-11-newsletter: not started (no campaign yet; `comms send 2019-11-newsletter`"
    assert out == expected + " starts it)\n"
    code, _, err = run_cli(site, "status", "gibt-es-nicht")
    assert code == 1 and err.startswith("error: no issue 'gibt-es-nicht' in ")


def test_dry_run_of_a_proof_names_the_proof(site: Path) -> None:
    code, out, _ = run_cli(site, "send", ISSUE, "--to", "Red@Example.org", "--dry-run")
    assert code == 0
    assert out == (
        f"Plan: a proof of {ISSUE} to red@example.org (outside the list) in de; nothing is sent\n"
    )
