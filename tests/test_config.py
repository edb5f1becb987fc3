"""Config tests: sources in order, every problem named by key, secrets only from the environment."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from comms.core.config import env_names, load_config
from comms.core.errors import ConfigError


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "comms.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.path is None
    assert config.content_dir == tmp_path / "content"
    assert config.output_dir == tmp_path / "public"
    assert config.database_url == f"sqlite:///{tmp_path}/var/comms.db"
    assert config.transport_url == f"file://{tmp_path}/var/outbox"
    assert config.settings.site.timezone == "Europe/Berlin"


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'content_dir = "c"\noutput_dir = "out"\n')
    config = load_config(path, environ={})
    assert config.content_dir == tmp_path / "c"
    assert config.output_dir == tmp_path / "out"


def test_environment_beats_file_and_flags_beat_environment(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[site]\nname = "Datei"\n')
    env = {"COMMS_SITE_NAME": "Umgebung", "COMMS_DATABASE_URL": "postgresql://db/comms"}
    config = load_config(path, environ=env)
    assert config.settings.site.name == "Umgebung"
    assert config.database_url == "postgresql://db/comms"
    config = load_config(path, environ=env, overrides={"site": {"name": "Flag"}})
    assert config.settings.site.name == "Flag"


def test_every_problem_is_reported_at_once_and_names_the_key(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[site]\nbase_url = "http://example.org"\ntimezone = "Mars/Olympus"\n'
        '[sender]\naddress = "kein-at"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"COMMS_SENDER_LIST_ID": "no spaces allowed"})
    assert info.value.problems == [
        "comms.toml: 'site.base_url': must be an absolute https URL",
        "comms.toml: 'site.timezone': unknown time zone 'Mars/Olympus'",
        "comms.toml: 'sender.address': not a valid e-mail address: An email address must "
        "have an @-sign.",
        "environment COMMS_SENDER_LIST_ID: 'sender.list_id': must be a dot-atom under a "
        "domain you control, e.g. news.example.org",
    ]


def test_unknown_keys_are_warnings_and_errors_when_strict(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'colour = "blue"\n[site]\ntitle = "x"\n')
    config = load_config(path, environ={})
    assert config.warnings == [
        "comms.toml: 'colour': unknown key",
        "comms.toml: 'site.title': unknown key",
    ]
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, strict=True)
    assert info.value.problems == [
        "comms.toml: 'colour': unknown key (--strict)",
        "comms.toml: 'site.title': unknown key (--strict)",
    ]


def test_secrets_only_from_the_environment(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'secret_key = "abc"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [
        "comms.toml: 'secret_key': secrets come only from the environment (COMMS_SECRET_KEY), "
        "never from a file"
    ]
    config = load_config(
        _toml(tmp_path, ""),
        environ={"COMMS_SECRET_KEY": "s3cret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0VuQe3w"},
    )
    assert config.secret_key == "s3cret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0VuQe3w"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "site = [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems[0].startswith("comms.toml: invalid TOML: ")


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", environ={})
    assert info.value.problems == [f"{tmp_path / 'nope.toml'}: config file not found"]


def test_fixed_point_environment_names() -> None:
    names = env_names()
    assert names["COMMS_DATABASE_URL"] == ("database_url",)
    assert names["COMMS_TRANSPORT"] == ("transport",)
    assert names["COMMS_SITE_BASE_URL"] == ("site", "base_url")


def test_item_ids_are_name_based_uuids(tmp_path: Path) -> None:
    config = load_config(_toml(tmp_path, ""), environ={})
    # uuid5(NAMESPACE_URL, "https://newsletter.example.org/event/x"), computed once by hand
    assert config.item_id("event", "x") == "urn:uuid:cbb3571f-4213-5ffe-bd6f-91f8f34d4591"
    assert config.item_id("event", "y") != config.item_id("event", "x")
    for kind, slug in [("issue", "2019-11-newsletter"), ("event", "ü-ß"), ("award", "a" * 300)]:
        name = f"https://{config.host}/{kind}/{slug}"
        assert config.item_id(kind, slug) == f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def test_any_secret_in_the_file_is_an_error(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[smtp]\npassword = "x"\n[api]\nkey = "y"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [
        "comms.toml: 'smtp.password': secrets come only from the environment "
        "(COMMS_SMTP_PASSWORD), never from a file",
        "comms.toml: 'api.key': secrets come only from the environment (COMMS_API_KEY), "
        "never from a file",
    ]


def test_base_url_must_be_the_root_of_a_host(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[site]\nbase_url = "https://example.org/nl/"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [
        "comms.toml: 'site.base_url': must be the root of a host, without a path "
        "(e.g. https://news.example.org)"
    ]
    assert load_config(_toml(tmp_path, '[site]\nbase_url = "https://example.org/"\n'), environ={})


def test_transport_is_checked_with_the_config(tmp_path: Path) -> None:
    for value, problem in (
        ("bogus://x", "must be a transport URL (smtp://, smtp+starttls://, smtps://, file://, "
         "memory://, brevo+https://, brevo+http://), got 'bogus://x'"),
        ("smtp://[::1", "not a valid URL: Invalid IPv6 URL"),
    ):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            load_config(_toml(tmp_path, ""), environ={"COMMS_TRANSPORT": value})
        assert info.value.problems == [f"environment COMMS_TRANSPORT: 'transport': {problem}"]


def test_warnings_are_kept_when_there_are_errors(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'colour = "blue"\n[site]\nbase_url = "ftp://x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.warnings == ["comms.toml: 'colour': unknown key"]
    assert info.value.problems == ["comms.toml: 'site.base_url': must be an absolute https URL"]
