"""One chain of send rules: every caller that asks "may this go out?" gets the same answer in
the same words (comms/sending/rules.py)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine

from comms.content.site import read_site
from comms.core.config import load_config
from comms.db.store import open_store
from comms.schedule import jobs
from comms.sending.campaign import refusal
from comms.sending.rules import CHAIN, Request

from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, berlin, outbox, set_front_matter, with_subscribers

pytestmark = pytest.mark.database

APPROVAL = {"COMMS_DELIVERY_REQUIRE_APPROVAL": "true"}
DUE = berlin(2099, 6, 1, 9, 0)


def _unknown_event(root: Path) -> None:
    path = root / "content" / "issues" / f"{ISSUE}.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("events:\n", "events:\n  - gibtsnicht\n"), encoding="utf-8")


def _draft(root: Path) -> None:
    set_front_matter(root / "content" / "issues" / f"{ISSUE}.md", "status", "entwurf")


#: (rule that refuses, how the issue is spoiled, environment)
CASES: list[tuple[str, Callable[[Path], None], dict[str, str]]] = [
    ("ready", _draft, {}),
    ("no-errors", _unknown_event, {}),
    ("approved", lambda root: None, APPROVAL),
]


def test_the_chain_has_named_described_rules_in_order() -> None:
    assert [rule.name for rule in CHAIN] == ["ready", "no-errors", "due", "approved"]
    assert all(rule.description for rule in CHAIN)


@pytest.mark.parametrize(("rule", "spoil", "env"), CASES, ids=[case[0] for case in CASES])
def test_every_caller_gives_the_chains_reason(
    site_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    rule: str,
    spoil: Callable[[Path], None],
    env: dict[str, str],
) -> None:
    with_subscribers(site_copy)
    path = site_copy / "content" / "issues" / f"{ISSUE}.md"
    set_front_matter(path, "send_at", None)  # due now; scheduled below for the scheduler
    spoil(site_copy)
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(site_copy / "comms.toml")
    site, errors = read_site(config)
    store = open_store(config)
    try:
        found = refusal(config, store, site, errors, Request(site.issues[ISSUE], config.now()))
    finally:
        store.close()
    assert found is not None and found.rule == rule
    reason = found.reason

    code, _, err = run_cli(site_copy, "send", ISSUE, "--now", env=env)
    assert code == 1 and err.endswith(
        f"error: {reason}{' (' + found.hint + ')' if found.hint else '; nothing sent'}\n"
    )
    code, out, dry_err = run_cli(site_copy, "send", ISSUE, "--dry-run", env=env)
    assert code == 1 and reason in dry_err, dry_err
    code, out, _ = run_cli(site_copy, "status", ISSUE, "--json", env=env)
    assert json.loads(out)["refused"] == reason
    code, out, _ = run_cli(site_copy, "status", ISSUE, env=env)
    assert f"not sendable now: {reason}\n" in out
    # Scheduled in the future: `comms schedule` has a job for it, the job asks when due.
    set_front_matter(path, "send_at", "2099-06-01 09:00")
    if rule != "ready":  # the scheduler plans no job for a draft
        code, out, _ = run_cli(site_copy, "schedule", "--json", env=env)
        assert json.loads(out)["blocked"] == {ISSUE: reason}
    with time_machine.travel(DUE.timestamp() + 1, tick=False):
        with caplog.at_level(logging.INFO, "comms.scheduler"):
            if rule == "ready":
                assert (
                    jobs.scheduled_send(str(site_copy / "comms.toml"), ISSUE, DUE.isoformat())
                    == "skipped"
                )
                assert f"send of {ISSUE} skipped: {reason}" in caplog.text
            else:
                # Refused and recorded, in one log line with the chain's reason; no raise.
                assert (
                    jobs.scheduled_send(str(site_copy / "comms.toml"), ISSUE, DUE.isoformat())
                    == "refused"
                )
                assert f"scheduled send of {ISSUE} refused, nothing sent: {reason}" in caplog.text
    assert outbox(site_copy) == []


@pytest.mark.usefixtures("without_approval")  # the due rule alone
def test_a_scheduled_issue_waits_for_its_time_everywhere(site_copy: Path) -> None:
    """The due rule judges the reference date (config.now()); the scheduler's job and the
    schedule's warning ask as of the issue's send_at, when the job is due."""
    with_subscribers(site_copy)
    set_front_matter(
        site_copy / "content" / "issues" / f"{ISSUE}.md", "send_at", "2099-06-01 09:00"
    )
    code, _, err = run_cli(site_copy, "send", ISSUE)
    reason = (
        f"issue '{ISSUE}' is scheduled for Mo., 1. Juni 2099, 09:00 Uhr; the scheduler "
        f"(`comms serve`) sends it then; `comms send {ISSUE} --now` sends it now"
    )
    assert (code, err) == (1, f"error: {reason}; nothing sent\n")
    code, out, _ = run_cli(site_copy, "status", ISSUE, "--json")
    assert json.loads(out)["refused"] == reason
    code, out, err = run_cli(site_copy, "schedule", "--json")
    assert json.loads(out)["blocked"] == {} and err == ""


@pytest.mark.usefixtures("without_approval")  # rendering, not the desk
def test_a_send_on_a_terminal_renders_each_edition_once(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan, the question and the send share one rendering of the editions."""
    from click.testing import CliRunner

    from comms.cli import main
    from comms.sending import campaign
    from comms.sending.issue_editions import issue_editions as real

    with_subscribers(site_copy)
    rendered: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        rendered.append(args[2].slug)
        return real(*args, **kwargs)

    monkeypatch.setattr(campaign, "issue_editions", counted)
    runner = CliRunner()
    with runner.isolation(input="y\n", env={"COMMS_SECRET_KEY": SECRET}) as (out, _, _):
        monkeypatch.setattr(sys.stdin, "isatty", lambda: True)  # as on a terminal
        with pytest.raises(SystemExit) as done:
            main(["--config", str(site_copy / "comms.toml"), "send", ISSUE, "--now"])
    assert done.value.code == 0
    assert "Send it now? [y/N]" in out.getvalue().decode()
    assert rendered == [ISSUE]
    assert len(outbox(site_copy)) == 3
