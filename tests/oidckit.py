"""A real OpenID Connect provider for the desk's sign-on tests: node-oidc-provider (npm) run by
tests/oidc_provider.mjs as a node process on 127.0.0.1, and the desk pointing at it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .deskkit import DeskSite, open_desk

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "oidc_provider.mjs"
CLIENT_ID = "comms-desk"
CLIENT_SECRET = "client-secret-for-the-tests-7Hq2"
#: The provider's people: login name -> claims.
PEOPLE = {
    "anna": {"email": "anna@example.org", "email_verified": True},
    "mallory": {"email": "mallory@example.org", "email_verified": True},
    "erin": {"email": "erin@example.org", "email_verified": False},
    "dora": {"email": "dora@example.org", "email_verified": True},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SsoDesk:
    """The desk with `[desk_oidc]` pointing at a running provider."""

    site: DeskSite
    issuer: str


@contextmanager
def sso_desk_on(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SsoDesk]:
    """The site in `site_copy` with the desk on and `[desk_oidc]` set, and the provider
    running (its people: PEOPLE); COMMS_SECRET_KEY must be SECRET."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node and node_modules/oidc-provider are needed: run `npm install`")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with (site_copy / "comms.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'\n[desk_oidc]\nissuer = "{issuer}"\nclient_id = "{CLIENT_ID}"\n')
    monkeypatch.setenv("COMMS_DESK_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    with open_desk(site_copy) as site:
        environ = os.environ | {
            "OIDC_PORT": str(port),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_REDIRECT_URIS": f"{site.base}/desk/sso/callback",
            "OIDC_ACCOUNTS": json.dumps(PEOPLE),
        }
        provider = subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert provider.stdout is not None
            for line in provider.stdout:
                if line.startswith("ready"):
                    break
            else:
                pytest.fail(f"the provider did not start (exit {provider.wait()})")
            yield SsoDesk(site, issuer)
        finally:
            provider.terminate()
            provider.wait(timeout=10)
