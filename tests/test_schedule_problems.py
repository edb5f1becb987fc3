"""Nothing fails silently: a refused scheduled send is recorded and shown, and the scheduler
of a running `comms serve` notices a changed content folder within `schedule.watch_seconds`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from comms.core.clock import now_utc
from comms.db.incidents import problem_list, record_problem
from comms.schedule.runner import start_scheduler

from .ledgerkit import run_cli
from .schedkit import (
    BERLIN,
    ISSUE,
    SECRET,
    open_site,
    set_front_matter,
    wait_for,
    with_subscribers,
)
from .smtp_servers import Handler, smtp_server
from .test_schedule_serve import serve

pytestmark = [pytest.mark.database, pytest.mark.slow]


def _status(root: Path, env: dict[str, str]) -> list[dict[str, object]]:
    code, out, err = run_cli(root, "status", "--json", env=env)
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_a_refused_scheduled_send_is_recorded_shown_and_alerted(
    site_copy: Path, httpserver: HTTPServer
) -> None:
    # The sample site requires approval; nobody approved: the send is refused when due.
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env = {
        "COMMS_SECRET_KEY": SECRET,
        "COMMS_ALERTS_TO": "buero@example.org",
        "COMMS_ALERTS_WEBHOOK": httpserver.url_for("/hook"),
    }
    with_subscribers(site_copy)
    due = (datetime.now(BERLIN) + timedelta(seconds=8)).replace(microsecond=0)
    set_front_matter(
        site_copy / "content" / "issues" / f"{ISSUE}.md", "send_at", f"{due:%Y-%m-%d %H:%M:%S}"
    )
    handler = Handler()
    with smtp_server(handler) as smtp_port:
        env["COMMS_TRANSPORT"] = f"smtp://127.0.0.1:{smtp_port}"
        with serve(site_copy, env) as (first, _):
            assert "(with the scheduler; Ctrl+C stops)" in first
            wait_for(lambda: any(r["status"] == "refused" for r in _status(site_copy, env)), 40)
            wait_for(lambda: len(handler.received) == 1 and len(httpserver.log) == 1)
            code, out, _ = run_cli(site_copy, "schedule", "--json", env=env)
            code_text, text, _ = run_cli(site_copy, "schedule", env=env)
            one_code, one, _ = run_cli(site_copy, "status", ISSUE, env=env)
        # serve() asserts that the log holds no traceback.
    # Nothing went to the list; the office got one alert (German, by mail and webhook).
    [alert] = handler.received
    assert alert.rcpt_tos == ["buero@example.org"]
    mail = message_from_bytes(alert.data, policy=policy.default)
    assert mail["Subject"] == f"Geplanter Versand von {ISSUE} abgelehnt"
    assert json.loads(httpserver.log[0][0].get_data())["kind"] == "send-refused"
    [row] = _status(site_copy, env)
    assert (row["issue"], row["status"]) == (ISSUE, "refused")
    problem = row["problem"]
    assert isinstance(problem, dict)
    assert problem["status"] == "refused"
    assert problem["reason"].startswith(f"issue '{ISSUE}' is not approved (version ")
    assert datetime.fromisoformat(problem["due_at"]) == due
    assert json.loads(out)["problems"] == [problem]
    assert f"refused: the scheduled send of {ISSUE} (due at " in text
    assert f"refused: the scheduled send of {ISSUE} (due at " in one


@pytest.mark.usefixtures("without_approval")
def test_comms_schedule_shows_a_newly_ready_issue_at_once(site_copy: Path) -> None:
    env = {"COMMS_SECRET_KEY": SECRET, "COMMS_SCHEDULE_WATCH_SECONDS": "60"}
    issue = site_copy / "content" / "issues" / f"{ISSUE}.md"
    set_front_matter(issue, "send_at", None)
    with serve(site_copy, env) as (first, _):
        assert "(with the scheduler; Ctrl+C stops)" in first
        due = (datetime.now(BERLIN) + timedelta(hours=1)).replace(microsecond=0)
        set_front_matter(issue, "send_at", f"{due:%Y-%m-%d %H:%M:%S}")
        code, out, err = run_cli(site_copy, "schedule", "--json", env=env)
    assert code == 0, err
    view = json.loads(out)
    assert view["scheduler"] is not None
    sends = [job for job in view["jobs"] if job["id"] == f"send:{ISSUE}"]
    assert [datetime.fromisoformat(job["next_run"]) for job in sends] == [due]


@pytest.mark.usefixtures("without_approval")
def test_the_scheduler_picks_up_a_changed_content_folder_within_its_watch_interval(
    site_copy: Path,
) -> None:
    # The refresh runs every 15 minutes: only the content watch can find this send in time.
    env = {"COMMS_SECRET_KEY": SECRET, "COMMS_SCHEDULE_WATCH_SECONDS": "1"}
    with_subscribers(site_copy)
    issue = site_copy / "content" / "issues" / f"{ISSUE}.md"
    set_front_matter(issue, "send_at", None)
    handler = Handler()
    with smtp_server(handler) as smtp_port:
        env["COMMS_TRANSPORT"] = f"smtp://127.0.0.1:{smtp_port}"
        with serve(site_copy, env) as (first, _):
            assert "(with the scheduler; Ctrl+C stops)" in first
            due = (datetime.now(BERLIN) + timedelta(seconds=4)).replace(microsecond=0)
            set_front_matter(issue, "send_at", f"{due:%Y-%m-%d %H:%M:%S}")
            wait_for(lambda: len(handler.received) == 3, timeout=40)
    code, out, _ = run_cli(site_copy, "status", ISSUE, "--json", env=env)
    assert json.loads(out)["counts"]["sent"] == 3


@pytest.mark.usefixtures("without_approval")
def test_a_problem_is_forgotten_once_the_issue_is_planned_anew(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    issue = site_copy / "content" / "issues" / f"{ISSUE}.md"
    due = (datetime.now(BERLIN) + timedelta(hours=1)).replace(microsecond=0)
    set_front_matter(issue, "send_at", f"{due:%Y-%m-%d %H:%M:%S}")
    config, store = open_site(site_copy)
    handle = None
    try:
        record_problem(store.engine, ISSUE, "refused", "not approved", due, now_utc())
        handle = start_scheduler(config, store)
        assert handle is not None
        assert [p.slug for p in problem_list(store.engine)] == [ISSUE]  # still planned so
        set_front_matter(issue, "send_at", f"{due + timedelta(days=1):%Y-%m-%d %H:%M:%S}")
        handle.sync()
        assert problem_list(store.engine) == []  # moved: the old refusal is moot
    finally:
        if handle is not None:
            handle.shutdown()
        store.close()
