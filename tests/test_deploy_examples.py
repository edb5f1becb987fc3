"""The deployment examples in docs/operations.md, as an operator copies them: the systemd
units pass `systemd-analyze verify` (systemd's own parser: unknown keys, bad values, missing
units), the nginx configurations `nginx -t`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"
#: A fenced `ini` block whose first line names the unit file: `# /etc/systemd/system/NAME`.
UNIT = re.compile(
    r"^( *)```ini\n\1# /etc/systemd/system/(\S+)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL
)
#: Where the docs install comms; the test points the units at this environment's comms.
INSTALLED = "/opt/comms/.venv/bin/comms"
#: A fenced `nginx` block: a piece of nginx's `http` context.
NGINX = re.compile(r"^```nginx\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The certificate the examples name (Let's Encrypt's layout); the test makes a throwaway one.
CERTIFICATES = "/etc/letsencrypt/live/newsletter.example.org"


def documented_units() -> dict[str, str]:
    """Unit file name → its text, for every unit the operations page shows."""
    text = OPERATIONS.read_text(encoding="utf-8")
    return {m[2]: textwrap.dedent(m[3]) for m in UNIT.finditer(text)}


def test_the_page_shows_every_unit_an_operator_needs() -> None:
    units = documented_units()
    assert sorted(units) == [
        "comms-build.service",
        "comms-build.timer",
        "comms-worker.service",
        "comms.service",
    ]
    for name, text in units.items():
        # var/ exists only with SQLite, a generated key or a file outbox: a unit that needs it
        # fails to start (226/NAMESPACE) on a PostgreSQL host.
        for line in re.findall(r"^ReadWritePaths=(.*)$", text, re.MULTILINE):
            paths = line.split()
            assert all(not p.endswith("/var") or p.startswith("-") for p in paths), name


@pytest.mark.slow
def test_systemd_analyze_verifies_the_documented_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (Debian package `systemd`; .ci/run installs it)")
    comms = Path(sys.executable).with_name("comms")
    names = []
    for name, text in documented_units().items():
        (tmp_path / name).write_text(text.replace(INSTALLED, str(comms)), encoding="utf-8")
        names.append(str(tmp_path / name))
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names], capture_output=True, text=True, check=False
    )
    # verify exits 0 on many problems (an unknown key is "ignoring"): any word from it is one.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def _self_signed(folder: Path) -> None:
    """fullchain.pem and privkey.pem for newsletter.example.org in `folder`, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsletter.example.org")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.slow
def test_nginx_accepts_the_documented_configurations(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is missing (Debian package `nginx-light`; .ci/run installs it)")
    _self_signed(tmp_path)
    blocks = NGINX.findall(OPERATIONS.read_text(encoding="utf-8"))
    assert len(blocks) == 2  # one server behind a proxy; two behind a load balancer
    assert any("upstream comms" in block for block in blocks)
    for number, block in enumerate(blocks):
        conf = tmp_path / f"nginx-{number}.conf"
        http = block.replace(CERTIFICATES, str(tmp_path))
        conf.write_text(f"events {{}}\nhttp {{\n{http}}}\n", encoding="utf-8")
        done = subprocess.run(
            [nginx, "-t", "-p", str(tmp_path), "-c", str(conf),
             "-g", f"pid {tmp_path / 'nginx.pid'}; error_log stderr;"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        problems = [
            line for line in done.stderr.splitlines() if "[warn]" in line or "[emerg]" in line
        ]
        assert (done.returncode, problems) == (0, []), done.stderr
