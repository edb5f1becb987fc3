"""One registry of transport URL schemes, used by the settings check and by open_transport."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from comms.core.config import load_config
from comms.core.errors import ConfigError
from comms.core.files import exposure_warnings
from comms.core.transport_url import SCHEMES, transport_folder
from comms.mail.http_api import HttpApiTransport
from comms.mail.smtp import SmtpTransport
from comms.mail.transports import FileTransport, MemoryTransport, open_transport

from .conftest import ROOT

EXAMPLE = {"smtp": "127.0.0.1:2525", "api": "localhost:8080", "file": "outbox", "memory": "t"}
CLASSES = {
    "smtp": SmtpTransport,
    "api": HttpApiTransport,
    "file": FileTransport,
    "memory": MemoryTransport,
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_registered_scheme_is_accepted_and_opens(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://{EXAMPLE[SCHEMES[scheme].kind]}"
    path = tmp_path / "comms.toml"
    path.write_text(f'transport = "{url}"\n', encoding="utf-8")
    config = load_config(path, environ={"COMMS_API_KEY": "k"})
    transport = open_transport(config.transport_url, config)
    assert type(transport) is CLASSES[SCHEMES[scheme].kind]
    transport.close()


def test_the_settings_check_lists_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "comms.toml"
    path.write_text('transport = "ftp://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    listed = re.findall(r"([a-z+]+)://", info.value.problems[0])
    assert listed[:-1] == list(SCHEMES)  # the last is the bad URL itself


def test_a_relative_file_url_names_one_folder_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (site / "comms.toml").write_text('transport = "file://var/outbox"\n', encoding="utf-8")
    config = load_config(site / "comms.toml", environ={})
    outbox = site / "var" / "outbox"
    assert config.transport_url == f"file://{outbox}"
    assert transport_folder(config.settings.transport, config.root) == outbox
    transport = open_transport(config.transport_url, config)
    assert isinstance(transport, FileTransport) and transport.directory == outbox
    outbox.mkdir(parents=True)
    outbox.chmod(0o755)
    assert any(str(outbox) in w for w in exposure_warnings(config))


def test_no_second_list_of_schemes_or_file_url_parse() -> None:
    """Schemes are named in comms.core.transport_url alone (listed twice, file:// parsed three
    times before)."""
    pattern = re.compile(
        r"""["']smtp\+starttls["']|["']brevo\+https?["']|(startswith|removeprefix)\(["']file:"""
        r"""|len\(["']file://"""
    )
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(ROOT.glob("comms/**/*.py"))
        if path.name != "transport_url.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
