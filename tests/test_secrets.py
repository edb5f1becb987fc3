"""Every secret is read by the settings alone, from its environment variable, and one list of
them (comms.core.settings.SECRETS) drives the refusal in files and the masking in logs."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import click
import pytest

from comms.core.config import ENV_PREFIX, env_names, load_config
from comms.core.errors import ConfigError
from comms.core.logs import RedactingFilter, redact, shown_url
from comms.core.settings import SECRETS
from comms.mail.transports import open_transport

from .conftest import ROOT
from .ledgerkit import run_cli

#: The variables users set today (README "Configuration"): they must keep working.
NAMES = {
    ("secret_key",): "COMMS_SECRET_KEY",
    ("smtp", "password"): "COMMS_SMTP_PASSWORD",
    ("api", "key"): "COMMS_API_KEY",
    ("bounces", "password"): "COMMS_BOUNCES_PASSWORD",
    ("bounces", "webhook_secret"): "COMMS_BOUNCES_WEBHOOK_SECRET",
    ("alerts", "webhook"): "COMMS_ALERTS_WEBHOOK",
    ("metrics", "token"): "COMMS_METRICS_TOKEN",
    ("desk_oidc", "client_secret"): "COMMS_DESK_OIDC_CLIENT_SECRET",
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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://nl:pw@db:5432/comms", "postgresql://nl:***@db:5432/comms"),
        ("postgres://nl:pw@db/comms", "postgres://nl:***@db/comms"),
        ("postgresql+psycopg2://nl:pw@db/comms", "postgresql+psycopg2://nl:***@db/comms"),
        # What urlsplit takes for the end of the host part, or no URL at all.
        ("postgresql://nl:pw/x?y#z@db/comms", "postgresql://nl:***@db/comms"),
        ("postgresql://nl:p@w@db/comms", "postgresql://nl:***@db/comms"),
        ("postgresql://nl:pw@db:port/comms", "postgresql://nl:***@db:port/comms"),
        ("postgres ql://nl:pw@db/comms", "postgres ql://nl:***@db/comms"),
        ("sqlite+pysqlcipher://:pw@/comms.db", "sqlite+pysqlcipher://:***@/comms.db"),
        ("'postgresql://nl:pw@db/comms': refused", "'postgresql://nl:***@db/comms': refused"),
        # Nothing to hide.
        ("smtp://nl@mail.example.org:25", "smtp://nl@mail.example.org:25"),
        ("https://newsletter.example.org:8443/x", "https://newsletter.example.org:8443/x"),
        ("imaps://bounces@imap.example.org/INBOX", "imaps://bounces@imap.example.org/INBOX"),
    ],
)
def test_a_url_is_shown_without_its_password_however_it_is_written(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert redact(f"cannot open {url}") == redact(f"cannot open {shown}")


#: Arguments for the commands that need some; every other command runs without any.
ARGUMENTS = {
    "approve": [["2019-11-newsletter"]],
    "new": [["event", "Ein Test"]],
    "backup": [["{tmp}/copy.db"]],
    "restore": [["{tmp}/copy.db"]],
    "worker": [["--once"]],
    "status": [[], ["2019-11-newsletter"], ["2019-11-newsletter", "--json"]],
    "send": [["2019-11-newsletter", "--dry-run"], ["2019-11-newsletter", "--now", "--yes"]],
    "subscribers add": [["anna@example.org"]],
    "subscribers import": [["{tmp}/people.csv", "--confirmed", "--consent-note", "Liste"]],
    "subscribers export": [[], ["--output", "{tmp}/people-export.csv"]],
    "subscribers show": [["anna@example.org"]],
    "subscribers remove": [["anna@example.org"]],
    "subscribers unsubscribe": [["anna@example.org"]],
    "subscribers revoke-links": [["anna@example.org"]],
    "translation new": [["events", "2018-06-01-aktionstag-internationaler-kindertag", "en"]],
    "translation stamp": [["content/events"]],
    # Servers: `serve` runs as a process of its own below; the preview opens no database.
    "serve": [],
    "preview": [],
}
#: Database URLs with a password, as hosting providers and SQLAlchemy's docs write them.
DATABASE_URLS = [
    f"postgres://comms:{PASSWORD}@127.0.0.1:1/comms",
    f"postgresql+psycopg2://comms:{PASSWORD}@127.0.0.1:1/comms",
    f"postgresql+psycopg2://comms:{PASSWORD}/x@127.0.0.1:1/comms",
    f"postgresql://comms:{PASSWORD}@127.0.0.1:port/comms",
]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append(f"{prefix}{name}")
    return found


@pytest.mark.slow
def test_no_command_shows_a_database_password(
    site_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21.7: every command, against an unreachable database whose URL has a password."""
    from comms.cli import cli

    (site_copy / "people.csv").write_text("email\nanna@example.org\n", encoding="utf-8")
    runs = []
    for command in _commands(cli):
        for arguments in ARGUMENTS.get(command, [[]]):
            runs.append([*command.split(), *(a.format(tmp=site_copy) for a in arguments)])
    urls = {"status": DATABASE_URLS, "backup": DATABASE_URLS}
    env = {**os.environ, "COMMS_SECRET_KEY": VALUE}
    comms = [sys.executable, "-m", "comms", "--config", str(site_copy / "comms.toml")]
    for args in runs:
        for url in urls.get(args[0], DATABASE_URLS[:1]):
            if args[0] == "worker" or args[:1] == ["send"] and "--now" in args:
                # These wait out an outage (until stopped): a process, stopped after a while.
                waiting = subprocess.Popen(
                    [*comms, *args], env={**env, "COMMS_DATABASE_URL": url}, stdout=PIPE,
                    stderr=PIPE, text=True,
                )  # fmt: skip
                try:
                    out, err = waiting.communicate(timeout=5)
                except subprocess.TimeoutExpired:
                    waiting.terminate()
                    out, err = waiting.communicate(timeout=30)
                assert "database" in err and PASSWORD not in out + err, (args, out + err)
                continue
            _, out, err = run_cli(site_copy, *args, env={"COMMS_DATABASE_URL": url})
            assert PASSWORD not in out + err, (args, url, out + err)
            assert PASSWORD not in caplog.text, (args, url)
    # `comms serve` as a process, with its logging: it may log the outage before it gives up.
    url = DATABASE_URLS[0]
    env["COMMS_DATABASE_URL"] = url
    server = subprocess.Popen(
        [*comms, "serve", "--port", "0"], env=env, stdout=PIPE, stderr=PIPE, text=True
    )
    try:
        out, err = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert "127.0.0.1" in err and PASSWORD not in out + err, out + err
