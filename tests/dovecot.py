"""A throwaway Dovecot IMAP server on 127.0.0.1 for the bounce-mailbox tests.

Debian's `dovecot-imapd` binaries (`.ci/run` installs them), a config written into a fresh
folder, a self-signed CA and server certificate made with `cryptography`, one passwd-file user
and Maildir storage in the same folder: nothing of the system's configuration is used.
The certificates come from `tests/smtp_servers.make_certs`, like the SMTP servers' ones.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .smtp_servers import free_port, make_certs

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "bounces@example.org"
PASSWORD = "imap-test-password"


def available() -> bool:
    """Whether Dovecot is installed."""
    return Path(DOVECOT).is_file()


@dataclass
class Dovecot:
    """A running server: where it listens, its CA, and a helper to put messages in."""

    host: str
    port: int
    ca_file: Path
    folder: Path

    def url(self, folder: str = "INBOX") -> str:
        """The `imaps://` URL comms takes (the password comes from the environment)."""
        return f"imaps://{USER.replace('@', '%40')}@{self.host}:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4_SSL:
        """A logged-in client that trusts the test CA."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Deliver messages into a folder (IMAP APPEND, as a delivery agent would store them)."""
        imap = self.client()
        try:
            for data in messages:
                status, detail = imap.append(folder, None, None, data.replace(b"\r\n", b"\n"))
                assert status == "OK", detail
        finally:
            imap.logout()

    def imap_create(self, folder: str) -> None:
        """Create a folder (an existing one is fine)."""
        imap = self.client()
        try:
            imap.create(f'"{folder}"')
        finally:
            imap.logout()

    def count(self, folder: str) -> int:
        """How many messages a folder holds (0 when it does not exist)."""
        imap = self.client()
        try:
            status, data = imap.select(f'"{folder}"', readonly=True)
            return int(data[0] or 0) if status == "OK" else 0
        finally:
            imap.logout()


def _accounts() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid): system users as root, else ourselves."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return "dovecot", "dovenull", nobody.pw_uid, nobody.pw_gid
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid


CONFIG = """\
base_dir = {run}
state_dir = {run}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = 0
ssl = required
ssl_cert = <{folder}/server.pem
ssl_key = <{folder}/server.key
auth_mechanisms = plain
mail_location = maildir:{home}/%n/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/%n
}}
"""


def start(folder: Path) -> tuple[subprocess.Popen[bytes], Dovecot]:
    """Start Dovecot with a config in `folder` (world-readable: its processes drop root)."""
    internal, login, uid, gid = _accounts()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    certs = make_certs(folder)
    os.chmod(certs.key_file, 0o600)
    run = folder / "run"
    home = folder / "home"
    home.mkdir()
    os.chown(home, uid, gid)
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port = free_port()
    conf = folder / "dovecot.conf"
    conf.write_text(
        CONFIG.format(
            run=run,
            folder=folder,
            home=home,
            internal=internal,
            login=login,
            uid=uid,
            gid=gid,
            port=port,
        )
    )
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stderr=subprocess.PIPE)
    server = Dovecot("127.0.0.1", port, certs.ca_file, folder)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (folder / "dovecot.log").read_text() if (folder / "dovecot.log").exists() else ""
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"dovecot exited: {err}\n{log}")
        try:
            server.client().logout()
            return process, server
        except (OSError, imaplib.IMAP4.error):
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("dovecot did not answer within 15 s")


def running() -> Iterator[Dovecot]:
    """Start a server in a fresh folder under /tmp; stop it and remove the folder afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="comms-dovecot-"))
    # Not pytest's tmp_path: its parents are private to root, and Dovecot's processes drop root.
    os.chmod(folder, 0o755)
    process, server = start(folder / "srv")
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
