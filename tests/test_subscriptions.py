"""Subscription housekeeping from the command line (purge, admin unsubscribe) and the config
rule that confirmations and newsletters come from different addresses (docs/requirements.md
E20, L4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comms.core.config import load_config
from comms.core.errors import ConfigError

from .conftest import ROOT
from .ledgerkit import run_cli


@pytest.mark.database
def test_purge_deletes_unconfirmed_sign_ups(site_copy: Path) -> None:
    assert run_cli(site_copy, "subscribers", "add", "wartet@example.org")[0] == 0
    code, out, _ = run_cli(site_copy, "subscribers", "purge")
    assert (code, out) == (0, "purged 0 unconfirmed sign-up(s) older than 7 day(s)\n")
    code, out, _ = run_cli(site_copy, "subscribers", "purge", "--days", "0")
    assert (code, out) == (0, "purged 1 unconfirmed sign-up(s) older than 0 day(s)\n")
    code, _, err = run_cli(site_copy, "subscribers", "show", "wartet@example.org")
    assert (code, err) == (1, "error: nothing stored about wartet@example.org\n")


@pytest.mark.database
def test_admin_unsubscribe_is_recorded_with_its_channel(site_copy: Path) -> None:
    add = ("subscribers", "add", "brief@example.org", "--confirmed", "--consent-note", "Formular")
    assert run_cli(site_copy, *add)[0] == 0
    code, out, _ = run_cli(
        site_copy, "subscribers", "unsubscribe", "Brief@example.org", "--note", "Brief vom 3. März"
    )
    assert (code, out) == (0, "unsubscribed brief@example.org (channel admin)\n")
    shown = json.loads(run_cli(site_copy, "subscribers", "show", "brief@example.org", "--json")[1])
    assert shown["status"] == "unsubscribed"
    last = shown["consent"][-1]
    assert (last["action"], last["channel"], last["note"]) == (
        "unsubscribe",
        "admin",
        "Brief vom 3. März",
    )
    code, _, err = run_cli(site_copy, "subscribers", "unsubscribe", "brief@example.org")
    assert (code, err) == (1, "error: brief@example.org is already unsubscribed\n")


def test_confirmations_need_their_own_sender_address() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            ROOT / "comms.toml",
            overrides={"subscribe": {"confirm_address": "newsletter@example.org"}},
            environ={},
        )
    assert caught.value.problems == [
        "comms.toml: 'subscribe': confirm_address must differ from sender.address "
        "(separate streams)"
    ]
