"""Sending defaults live in the `delivery` settings alone: a send run takes them from there."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from comms.core.config import Settings, load_config
from comms.core.settings import Delivery
from comms.sending.run import SendOptions

#: Each pacing setting, another value for it, and how a run sees that value.
SEEN: list[tuple[str, Any, Callable[[SendOptions], Any]]] = [
    ("concurrency", 9, lambda o: o.concurrency),
    ("rate", 12.5, lambda o: o.rate),
    ("batch_size", 7, lambda o: o.batch_size),
    ("retry_attempts", 5, lambda o: o.retry_attempts),
    ("retry_backoff_seconds", 11.0, lambda o: o.retry_backoff),
    ("retry_interval_minutes", 2.0, lambda o: o.retry_interval / timedelta(minutes=1)),
    ("retry_max_interval_hours", 3.0, lambda o: o.retry_max_interval / timedelta(hours=1)),
    ("give_up_after_hours", 5.0, lambda o: o.give_up_after / timedelta(hours=1)),
    ("lease_seconds", 60, lambda o: o.lease.total_seconds()),
]


def test_every_pacing_setting_is_seen_by_the_run() -> None:
    """SEEN covers every setting of the section but the approval (which is no pacing)."""
    assert {key for key, _, _ in SEEN} | {"require_approval"} == set(Delivery.model_fields)


def test_send_options_have_no_defaults_of_their_own() -> None:
    """A second copy of a default (in other units) could drift from the settings."""
    own = [
        f.name
        for f in dataclasses.fields(SendOptions)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert own == ["clock", "stop"]  # the clock and the shutdown signal are no settings


@pytest.fixture
def default_of() -> Iterator[Callable[[str, Any], None]]:
    """Change the default of a `delivery` setting, as an edit of core/settings.py would.

    Only a config with a `[delivery]` table rebuilds the section from the changed field
    defaults (`Settings.delivery`'s own default instance is made at import); the sample
    comms.toml has one, which the test relies on."""
    changed: list[tuple[str, Any]] = []

    def change(key: str, value: Any) -> None:
        field = Delivery.model_fields[key]
        changed.append((key, field.default))
        field.default = value
        Delivery.model_rebuild(force=True)
        Settings.model_rebuild(force=True)

    yield change
    for key, old in reversed(changed):
        Delivery.model_fields[key].default = old
    Delivery.model_rebuild(force=True)
    Settings.model_rebuild(force=True)


@pytest.mark.parametrize(("key", "value", "seen"), SEEN, ids=[key for key, _, _ in SEEN])
def test_a_changed_default_changes_what_a_send_run_uses(
    site_copy: Path,
    default_of: Callable[[str, Any], None],
    key: str,
    value: Any,
    seen: Callable[[SendOptions], Any],
) -> None:
    config = load_config(site_copy / "comms.toml")  # the sample sets no pacing key
    before = SendOptions.of(config.settings.delivery)
    assert seen(before) != value
    default_of(key, value)
    config = load_config(site_copy / "comms.toml")
    # What `comms send`, the scheduler, the demo and the retry pass build their run from.
    assert seen(SendOptions.of(config.settings.delivery)) == value


def test_command_line_overrides_win() -> None:
    options = SendOptions.of(Delivery(), concurrency=2, rate=0.0)
    assert (options.concurrency, options.rate) == (2, 0.0)
    assert SendOptions.of(Delivery(rate=5), rate=None).rate == 5
