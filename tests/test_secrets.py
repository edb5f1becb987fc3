"""Every secret is read by the settings alone, from its environment variable, and one list of
them (comms.core.settings.SECRETS) drives the refusal in files and the masking in logs."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

from comms.core.config import ENV_PREFIX, env_names, load_config
from comms.core.errors import ConfigError
from comms.core.logs import RedactingFilter, redact
from comms.core.settings import SECRETS
from comms.mail.transports import open_transport

from .conftest import ROOT

#: The variables users set today (README "Configuration"): they must keep working.
NAMES = {
    ("secret_key",): "COMMS_SECRET_KEY",
    ("smtp", "password"): "COMMS_SMTP_PASSWORD",
    ("api", "key"): "COMMS_API_KEY",
    ("bounces", "password"): "COMMS_BOUNCES_PASSWORD",
    ("bounces", "webhook_secret"): "COMMS_BOUNCES_WEBHOOK_SECRET",
    ("alerts", "webhook"): "COMMS_ALERTS_WEBHOOK",
    ("metrics", "token"): "COMMS_METRICS_TOKEN",
}
VALUE = "Zq8rT2vX9kLmN4pW7sYb3cFh6jD1gA5eU0oIx7Qw2Er"  # strong enough for a secret key
#: Secrets that must have a form: a chat webhook URL carries its credential in the path.
SHAPED: dict[tuple[str, ...], str] = {
    ("alerts", "webhook"): f"https://hooks.example.org/services/{VALUE}"
}


def _toml(folder: Path, text: str = "") -> Path:
    path = folder / "comms.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_list_of_secrets_keeps_the_variables_users_set() -> None:
    assert {path: ENV_PREFIX + "_".join(path).upper() for path in SECRETS} == NAMES


@pytest.mark.parametrize("path", SECRETS, ids=["_".join(p) for p in SECRETS])
def test_each_secret_comes_from_the_environment_only_and_is_masked(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    name = NAMES[path]
    value = SHAPED.get(path, VALUE)
    if path != ("secret_key",):  # read by load_config itself, beside the schema
        assert env_names()[name] == path
    config = load_config(_toml(tmp_path), environ={name: value})
    assert value in config.secret_values()
    assert value not in repr(config.settings)
    assert redact(f"login with {value} failed", config.secret_values()) == (
        "login with [secret] failed"
    )
    section = f"[{path[0]}]\n" if len(path) == 2 else ""
    with pytest.raises(ConfigError) as info:
        load_config(_toml(tmp_path, f'{section}{path[-1]} = "{value}"\n'), environ={})
    assert "never from a file" in info.value.problems[0] and name in info.value.problems[0]


def test_a_database_password_is_masked_too(tmp_path: Path) -> None:
    config = load_config(
        _toml(tmp_path), environ={"COMMS_DATABASE_URL": "postgresql://nl:pg-geheim@db/comms"}
    )
    assert "pg-geheim" in config.secret_values()


def test_the_transports_take_their_secrets_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set in the process environment but not given to the settings: not used.
    monkeypatch.setenv("COMMS_SMTP_PASSWORD", "from-os-environ")
    monkeypatch.setenv("COMMS_API_KEY", "from-os-environ")
    bare = load_config(_toml(tmp_path), environ={})
    with pytest.raises(ConfigError, match="needs a password in COMMS_SMTP_PASSWORD"):
        open_transport("smtps://nl@mail.example.org", bare)
    with pytest.raises(ConfigError, match="the API key must be set in COMMS_API_KEY"):
        open_transport("brevo+https://api.brevo.com", bare)
    config = load_config(
        _toml(tmp_path), environ={"COMMS_SMTP_PASSWORD": "pw", "COMMS_API_KEY": "key"}
    )
    smtp = open_transport("smtps://nl@mail.example.org", config)
    assert smtp.password == "pw"  # type: ignore[attr-defined]
    api = open_transport("brevo+https://api.brevo.com", config)
    assert api.session.headers["api-key"] == "key"  # type: ignore[attr-defined]


def test_the_log_filter_masks_the_secrets_in_messages_and_tracebacks() -> None:
    try:
        raise RuntimeError(f"AUTH PLAIN {VALUE} refused")
    except RuntimeError:
        record = logging.LogRecord(
            "comms", logging.ERROR, __file__, 1, "login %s", (VALUE,), exc_info=sys.exc_info()
        )
    RedactingFilter([VALUE]).filter(record)
    assert record.getMessage() == "login [secret]"
    assert record.exc_text is not None and VALUE not in record.exc_text
    assert "[secret]" in record.exc_text


def test_only_the_settings_read_the_environment() -> None:
    """os.environ is read in comms.core.config (the settings) and nowhere else in comms/."""
    pattern = re.compile(r"os\.environ|getenv\(|environ\.get\(")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(ROOT.glob("comms/**/*.py"))
        if path.relative_to(ROOT).as_posix() != "comms/core/config.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


PASSWORD = "s3cret-in-the-url"


def test_an_error_about_a_url_never_shows_its_password(tmp_path: Path) -> None:
    """A password written into a URL by mistake stays out of the message that refuses it."""
    from comms.bounces.mailbox import MailboxError, parse_mailbox_url
    from comms.core.errors import CommsError
    from comms.core.transport_url import check_transport_url
    from comms.db.backup import sqlite_path

    config = load_config(_toml(tmp_path), environ={})
    messages = []
    with pytest.raises(ValueError) as bad_scheme:
        check_transport_url(f"bogus://user:{PASSWORD}@host")
    messages.append(str(bad_scheme.value))
    with pytest.raises(ConfigError) as in_url:
        open_transport(f"smtps://user:{PASSWORD}@mail.example.org:465", config)
    messages.append(str(in_url.value))
    with pytest.raises(MailboxError) as mailbox:
        parse_mailbox_url(f"imaps://user:{PASSWORD}@imap.example.org/INBOX", tmp_path)
    messages.append(str(mailbox.value))
    with pytest.raises(CommsError) as backup:
        sqlite_path(f"mysql://user:{PASSWORD}@db.example.org/comms")
    messages.append(str(backup.value))
    assert all("user:***@" in message for message in messages), messages
    assert not any(PASSWORD in message for message in messages), messages
