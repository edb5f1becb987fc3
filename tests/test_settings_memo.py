"""The validated settings kept in var/: a hit skips validation, any change of what made them is
a miss, no secret reaches the disk, every error still names its key, across processes too."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import zoneinfo
from importlib.resources import files
from pathlib import Path

import pytest

from comms.core import settings_memo
from comms.core.config import Settings, load_config
from comms.core.errors import ConfigError
from comms.core.settings import settings_text

#: Strong values (keys.key_problem passes them) for every secret the settings read.
SECRET_ENV = {
    "COMMS_SECRET_KEY": "Zq8rT2vX9kLmN4pW7sYb3cFh6jD1gA5eU0oIx7Qw2Er",
    "COMMS_SMTP_PASSWORD": "smtp-Pw-4b1d9e7c",
    "COMMS_API_KEY": "api-Key-8f2a6c3e",
    "COMMS_BOUNCES_PASSWORD": "imap-Pw-5e9b2d4a",
    "COMMS_BOUNCES_WEBHOOK_SECRET": "Hk3mP9sVb2nQ7xWc5zLd8fRg4jTy6uEa1oKi0hNw3Bv",
    "COMMS_ALERTS_WEBHOOK": "https://chat.example.org/hooks/Tk-7c4e1f9a",
    "COMMS_METRICS_TOKEN": "metrics-Tok-2d8f5b1c",
    "COMMS_DESK_OIDC_CLIENT_SECRET": "oidc-Sec-9a3e6d2f",
}


def _toml(tmp_path: Path, text: str = '[site]\nname = "Datei"\n') -> Path:
    path = tmp_path / "comms.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every validation of the whole settings from now on (a hit makes none)."""
    seen: list[object] = []
    validate = Settings.model_validate

    def counted(value: object) -> Settings:
        seen.append(value)
        return validate(value)

    monkeypatch.setattr(Settings, "model_validate", counted)
    return seen


def test_the_second_load_takes_the_kept_settings_from_a_private_file(
    tmp_path: Path, validations: list[object]
) -> None:
    path = _toml(tmp_path, '[site]\nname = "Datei"\nunknown = 1\n')
    first = load_config(path, environ={"COMMS_FEEDS_MAX_ITEMS": "7"}, keep=True)
    second = load_config(path, environ={"COMMS_FEEDS_MAX_ITEMS": "7"}, keep=True)
    assert len(validations) == 1
    assert second.settings == first.settings
    assert second.settings.feeds.max_items == 7
    assert second.warnings == first.warnings == ["comms.toml: 'site.unknown': unknown key"]
    kept = tmp_path / settings_memo.MEMO_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # Without `keep` (tests, the scheduler's jobs) nothing is taken or kept.
    kept.unlink()
    load_config(path, environ={}, keep=False)
    assert len(validations) == 2
    assert not kept.exists()


@pytest.mark.parametrize(
    "change",
    ["file", "comment", "environment", "new variable", "secret set", "code", "strict", "damaged"],
)
def test_any_change_of_what_made_the_settings_validates_them_again(
    tmp_path: Path, validations: list[object], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    path = _toml(tmp_path)
    environ = {"COMMS_SITE_NAME": "Umgebung"}
    load_config(path, environ=dict(environ), keep=True)
    strict = False
    if change == "file":
        path.write_text('[site]\nname = "Datei"\n[feeds]\nmax_items = 9\n', encoding="utf-8")
    elif change == "comment":
        path.write_text('# neu\n[site]\nname = "Datei"\n', encoding="utf-8")
    elif change == "environment":
        environ["COMMS_SITE_NAME"] = "Andere"
    elif change == "new variable":
        environ["COMMS_FEEDS_MAX_ITEMS"] = "3"
    elif change == "secret set":
        environ["COMMS_SMTP_PASSWORD"] = "smtp-Pw-4b1d9e7c"
    elif change == "code":
        monkeypatch.setattr(settings_memo, "_code", lambda: b"other code")
    elif change == "strict":
        strict = True
    elif change == "damaged":
        kept = tmp_path / settings_memo.MEMO_FILE
        data = bytearray(kept.read_bytes())
        data[-1] ^= 1
        kept.write_bytes(bytes(data))
    config = load_config(path, environ=environ, strict=strict, keep=True)
    assert len(validations) == 2
    assert config.settings.site.name == ("Andere" if change == "environment" else "Umgebung")
    assert config.settings.feeds.max_items == {"file": 9, "new variable": 3}.get(change, 50)
    # The new outcome is kept in turn.
    load_config(path, environ=environ, strict=strict, keep=True)
    assert len(validations) == 2


def test_no_secret_is_written_and_each_comes_back_from_the_environment(
    tmp_path: Path, validations: list[object]
) -> None:
    path = _toml(tmp_path)
    first = load_config(path, environ=dict(SECRET_ENV), keep=True)
    second = load_config(path, environ=dict(SECRET_ENV), keep=True)
    assert len(validations) == 1
    assert second.settings == first.settings
    assert set(second.secret_values()) == set(SECRET_ENV.values())
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert (tmp_path / settings_memo.MEMO_FILE).exists()
    for value in SECRET_ENV.values():
        assert value.encode() not in written
        assert hashlib.sha256(value.encode()).hexdigest().encode() not in written
        assert hashlib.sha256(value.encode()).digest() not in written
    # Other values of the same secrets: the kept settings serve them, with the new values.
    other = {name: value[::-1] for name, value in SECRET_ENV.items()}
    other["COMMS_ALERTS_WEBHOOK"] = "https://chat.example.org/hooks/other"
    third = load_config(path, environ=other, keep=True)
    assert len(validations) == 1
    assert set(third.secret_values()) == set(other.values())
    assert third.settings.alerts.webhook == "https://chat.example.org/hooks/other"


@pytest.mark.parametrize("source", ["environment", "file"])
def test_settings_with_a_url_that_holds_a_password_are_never_kept(
    tmp_path: Path, validations: list[object], source: str
) -> None:
    url = "postgresql+psycopg://comms:db-Pw-7e3a9c1f@db.example.org/comms"
    environ = {"COMMS_DATABASE_URL": url} if source == "environment" else {}
    path = _toml(tmp_path, "" if environ else f'database_url = "{url}"\n')
    first = load_config(path, environ=environ, keep=True)
    second = load_config(path, environ=environ, keep=True)
    assert len(validations) == 2
    assert first.database_url == second.database_url == url
    assert not (tmp_path / settings_memo.MEMO_FILE).exists()


def test_every_error_still_names_its_key_after_settings_were_kept(
    tmp_path: Path, validations: list[object]
) -> None:
    path = _toml(tmp_path)
    environ = {"COMMS_ALERTS_WEBHOOK": "https://chat.example.org/hooks/a"}
    load_config(path, environ=environ, keep=True)
    # A secret that fails its field's check: the kept settings are not used.
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"COMMS_ALERTS_WEBHOOK": "http://chat.example.org"}, keep=True)
    assert info.value.problems == [
        "environment COMMS_ALERTS_WEBHOOK: 'alerts.webhook': must be an absolute https URL"
    ]
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={**environ, "COMMS_FEEDS_MAX_ITEMS": "0"}, keep=True)
    assert info.value.problems == [
        "environment COMMS_FEEDS_MAX_ITEMS: 'feeds.max_items': " + "must be at least 1"
    ]
    path.write_text('[site]\nbase_url = "ftp://example.org"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ, keep=True)
    assert info.value.problems == ["comms.toml: 'site.base_url': must be an absolute https URL"]
    # A weak secret key is checked at every load, kept settings or not.
    _toml(tmp_path)
    load_config(path, environ=environ, keep=True)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={**environ, "COMMS_SECRET_KEY": "short"}, keep=True)
    assert info.value.problems[0].startswith("environment COMMS_SECRET_KEY: ")


def _berlin() -> bytes:
    """The machine's zone file for Europe/Berlin (the system's, or the tzdata package's)."""
    for folder in zoneinfo.TZPATH:
        if (Path(folder) / "Europe" / "Berlin").is_file():
            return (Path(folder) / "Europe" / "Berlin").read_bytes()
    return files("tzdata.zoneinfo").joinpath("Europe/Berlin").read_bytes()


def test_a_time_zone_the_machine_lost_is_named_although_the_settings_were_kept(
    tmp_path: Path, validations: list[object]
) -> None:
    # A zone only a folder of our own knows (the tzdata package does not): taking it away
    # stands for a system update that removed the zone the kept settings name.
    zones = tmp_path / "zones"
    (zones / "Testland").mkdir(parents=True)
    (zones / "Testland" / "Mitte").write_bytes(_berlin())
    path = _toml(tmp_path, '[site]\ntimezone = "Testland/Mitte"\n')
    # Only this test's zone leaves the cache: other zones stay the objects other tests hold
    # (zones compare by identity), and the search path goes back to what it was.
    before = zoneinfo.TZPATH
    zoneinfo.reset_tzpath([str(zones)])
    try:
        load_config(path, environ={}, keep=True)
        assert load_config(path, environ={}, keep=True).settings.site.timezone == "Testland/Mitte"
        assert len(validations) == 1
        (zones / "Testland" / "Mitte").unlink()
        zoneinfo.ZoneInfo.clear_cache(only_keys=["Testland/Mitte"])
        with pytest.raises(ConfigError) as info:
            load_config(path, environ={}, keep=True)
    finally:
        zoneinfo.reset_tzpath(before)
        zoneinfo.ZoneInfo.clear_cache(only_keys=["Testland/Mitte"])
    lost = "comms.toml: 'site.timezone': unknown time zone 'Testland/Mitte'"
    assert info.value.problems == [lost]


_LOAD = """
import json, sys
from pathlib import Path
from comms.core.config import Settings, load_config
config = load_config(Path(sys.argv[1]), keep=True)
# Asked before the dump, which builds the serializers.
validated = Settings.__pydantic_complete__
email_validator = "email_validator" in sys.modules
print(json.dumps({
    "settings": config.settings.model_dump(mode="json"),
    "validated": validated,
    "email_validator": email_validator,
}))
"""


def _process(path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")}
    env["COMMS_SMTP_PASSWORD"] = SECRET_ENV["COMMS_SMTP_PASSWORD"]
    return subprocess.Popen(
        [sys.executable, "-c", _LOAD, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    found = json.loads(out)
    assert isinstance(found, dict)
    return found


@pytest.mark.slow
def test_a_second_process_takes_the_settings_another_one_kept(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[sender]\naddress = "Post@Example.org"\n')
    first = _result(_process(path))
    second = _result(_process(path))
    assert first["validated"] and first["email_validator"]
    # The second process neither built the validators nor imported email-validator.
    assert not second["validated"] and not second["email_validator"]
    assert second["settings"] == first["settings"]
    settings = second["settings"]
    assert isinstance(settings, dict)
    assert settings["smtp"]["password"] == SECRET_ENV["COMMS_SMTP_PASSWORD"]
    # Two processes at once, after a change: each validates or takes whole settings.
    path.write_text('[sender]\naddress = "neu@example.org"\n', encoding="utf-8")
    both = [_process(path), _process(path)]
    results = [_result(process) for process in both]
    assert all(r["settings"] == results[0]["settings"] for r in results)
    assert _result(_process(path))["settings"] == results[0]["settings"]
    written = (tmp_path / settings_memo.MEMO_FILE).read_bytes()
    assert SECRET_ENV["COMMS_SMTP_PASSWORD"].encode() not in written


def test_the_settings_text_follows_every_value_but_the_skipped(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[[brand.partners]]\nname = "A"\n')
    base = load_config(path, environ={}).settings
    changes = (
        {"COMMS_SMTP_PASSWORD": "x"},
        {"COMMS_FEEDS_HUBS": "https://hub.example.org"},
        {"COMMS_SCHEDULE_HOUSEKEEPING_TIME": "03:30"},
        {"COMMS_REFERENCE_DATE": "2020-01-15"},
    )
    texts = {settings_text(base)}
    for environ in changes:
        texts.add(settings_text(load_config(path, environ=environ).settings))
    path.write_text('[[brand.partners]]\nname = "B"\n', encoding="utf-8")
    texts.add(settings_text(load_config(path, environ={}).settings))
    assert len(texts) == len(changes) + 2
    workers = load_config(path, environ={"COMMS_RENDER_WORKERS": "2"}).settings
    plain = load_config(path, environ={}).settings
    assert settings_text(workers) != settings_text(plain)
    skip = {"render.workers"}
    assert settings_text(workers, skip) == settings_text(plain, skip)


#: Prints, as the process exits, the settings models whose validators or serializers were
#: built (`comms build` with kept settings should need none).
_BUILT = """
import atexit, sys
def built():
    from comms.core import config, settings
    models = [config.Settings, *vars(settings).values()]
    names = [m.__name__ for m in models if isinstance(m, type) and m.__dict__.get(
        "__pydantic_complete__")]
    print("BUILT", *names, file=sys.__stderr__)
atexit.register(built)
from comms.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_build_with_kept_settings_builds_no_settings_schema(site_copy: Path) -> None:
    def build() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _BUILT, "build"],
            cwd=site_copy,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        line = next(line for line in done.stderr.splitlines() if line.startswith("BUILT"))
        return line.split()[1:]

    assert "Settings" in build()  # validated, then kept
    award = site_copy / "content" / "awards" / "sonderpreis-2018.md"
    award.write_text(award.read_text(encoding="utf-8").replace("title: ", "title: Neu ", 1))
    # Every page's key covers the settings, and none needed their schema for it.
    assert build() == []
