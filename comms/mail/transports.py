"""Transports: how a finished message leaves (SMTP, HTTP API, .eml files, memory).

Every failure is classified (docs/requirements.md S5/S7): TemporaryFailure (4xx, timeouts, dropped
connections; `ambiguous` when the connection died after the message went out), PermanentFailure
(5xx for this address) or PolicyRejection (5.7.x, refused sender, AUTH or TLS failures: our
setup is at fault, so the campaign stops and no address is blamed). One instance per thread.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from comms.core.config import Config
from comms.core.errors import ConfigError, DeliveryError
from comms.core.files import write_private
from comms.core.local_faults import local_error
from comms.core.logs import shown_url
from comms.core.transport_url import SCHEMES, Kind, known_schemes, scheme_of, transport_folder
from comms.mail.smtp import SmtpTransport

# The HTTP API's client (requests, urllib3) is imported when an API transport is opened: an
# SMTP send would pay a tenth of a second of start-up for it.
if TYPE_CHECKING:
    from comms.mail.http_api import HttpApiTransport

#: Called by a transport right before a message is handed over for good; it may block, and
#: what it raises leaves the message unsent (and goes to the caller).
Gate = Callable[[], None]
#: Told the result of a message whose transport reports it later (`Transport.send`'s `then`):
#: None when the server took it, else the classified failure.
Then = Callable[[DeliveryError | None], None]


class Transport(Protocol):
    """Sends finished bytes; raises TemporaryFailure, PermanentFailure or PolicyRejection."""

    def send(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        key: str,
        gate: Gate | None = None,
        wire: bytes | None = None,
        then: Then | None = None,
    ) -> bool:
        """Deliver `data` to one recipient; `key` is the idempotency key (stable per delivery).

        `gate`, when given, is called once, as late as the transport can: SMTP calls it with
        all but the final "." sent, so that what the caller waits for overlaps the transfer
        (or first, sending the body and its "." in one write, when the gate has a `ready()`
        that says it lets the message go at once).
        `wire`, when given, is `data` as SMTP's DATA carries it (`OutgoingMessage.wire`);
        transports that do not speak SMTP ignore it.
        `then`, when given, lets the transport report the result later: it returns True with
        the message handed over and its result not yet known, and calls `then` with it once
        known (SMTP: when the next message's commands are on their way, or in `flush`). It
        returns False when the result is known: the message went, or it raised.
        """

    def flush(self) -> None:
        """Report every result still owed to a `then` (blocks until the server answers)."""

    def close(self) -> None:
        """Report what is owed (as `flush`), then release connections."""


class FileTransport:
    """Writes each message as `<dir>/<issue>/<uid>.eml`; a retry overwrites the same file."""

    def __init__(self, directory: Path) -> None:
        """Use (and create on demand) `directory`."""
        self.directory = directory

    def path_for(self, key: str) -> Path:
        """Where the message with idempotency key `key` is written."""
        parts = [
            "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in part)
            for part in key.split("/")
        ]
        parts = [p.lstrip(".") or "_" for p in parts]
        return self.directory.joinpath(*parts).with_name(parts[-1] + ".eml")

    def send(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        key: str,
        gate: Gate | None = None,
        wire: bytes | None = None,
        then: Then | None = None,
    ) -> bool:
        """Write the message atomically as a 0600 file in 0700 folders: it holds live links."""
        path = self.path_for(key)
        if gate is not None:
            gate()
        try:
            write_private(path, data)
        except OSError as exc:
            # A fault of this machine (a full disk, no permission), neither the address's nor
            # a server's: the run stops and hands the row back; every further message would
            # fail the same way.
            raise local_error(exc, path, len(data)) from None
        return False

    def flush(self) -> None:
        """Nothing is owed: every result is known when `send` returns."""

    def close(self) -> None:
        """Nothing to release."""

    def forget(self, uid: str, address: str) -> int:
        """Delete the files of one person (at erasure): their newsletters, `<issue>/<uid>.eml`,
        and the one-off mails to their address at the top (confirmation, data links); how many.
        """
        if not self.directory.is_dir():
            return 0
        name = self.path_for(f"issue/{uid}").name
        found = [path for path in self.directory.glob(f"*/{name}") if path.is_file()]
        wanted = address.lower()
        for path in self.directory.glob("*.eml"):
            with path.open("rb") as handle:
                headers = BytesHeaderParser(policy=compat32).parse(handle)
            to = [a.lower() for _, a in getaddresses([str(v) for v in headers.get_all("To", [])])]
            if wanted in to:
                found.append(path)
        for path in found:
            path.unlink(missing_ok=True)
        return len(found)


@dataclass(frozen=True)
class SentMessage:
    """One message a MemoryTransport accepted."""

    envelope_from: str
    recipient: str
    data: bytes
    key: str


_OUTBOXES: dict[str, list[SentMessage]] = {}


def memory_outbox(name: str = "") -> list[SentMessage]:
    """The shared list every `memory://NAME` transport of this process appends to."""
    return _OUTBOXES.setdefault(name, [])


class MemoryTransport:
    """Keeps messages in a list (tests); `failures` scripts errors per recipient address."""

    def __init__(
        self,
        outbox: list[SentMessage] | None = None,
        failures: Mapping[str, list[DeliveryError]] | None = None,
    ) -> None:
        """`failures[address]` is raised one per attempt, in order, before sends succeed."""
        self.sent = outbox if outbox is not None else []
        self.failures = {address: list(errors) for address, errors in (failures or {}).items()}

    def send(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        key: str,
        gate: Gate | None = None,
        wire: bytes | None = None,
        then: Then | None = None,
    ) -> bool:
        """Record the message, or raise the next scripted failure for this recipient."""
        scripted = self.failures.get(recipient)
        if scripted:
            raise scripted.pop(0)
        if gate is not None:
            gate()
        self.sent.append(SentMessage(envelope_from, recipient, data, key))
        return False

    def flush(self) -> None:
        """Nothing is owed: every result is known when `send` returns."""

    def close(self) -> None:
        """Nothing to release."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bad(url: str, problem: str) -> ConfigError:
    return ConfigError([f"transport {shown_url(url)!r}: {problem}"])


def _smtp(url: str, config: Config) -> SmtpTransport:
    parts = urlsplit(url)
    scheme = SCHEMES[parts.scheme]
    try:
        port = parts.port or scheme.default_port
    except ValueError:
        raise _bad(url, "the port is not a number") from None
    host = parts.hostname
    if not host:
        raise _bad(url, "no host (e.g. smtp+starttls://mail.example.org:587)")
    if parts.password is not None:
        raise _bad(url, "no password in the URL; set COMMS_SMTP_PASSWORD")
    smtp = config.settings.smtp
    username = unquote(parts.username) if parts.username else smtp.username
    password = smtp.password
    if username and not password:
        raise _bad(url, f"user {username!r} needs a password in COMMS_SMTP_PASSWORD")
    if username and scheme.security == "plain" and not _is_loopback(host):
        raise _bad(url, "refusing to log in without TLS; use smtp+starttls:// or smtps://")
    ca_file = None
    if smtp.ca_file:
        ca_path = (config.root / Path(smtp.ca_file).expanduser()).resolve()
        if not ca_path.is_file():
            raise ConfigError([f"'smtp.ca_file': {ca_path} not found"])
        ca_file = str(ca_path)
    return SmtpTransport(
        host,
        port or 25,
        mode=scheme.security,
        username=username,
        password=password,
        timeout=smtp.timeout,
        max_per_connection=smtp.max_messages_per_connection,
        ca_file=ca_file,
        helo_name=smtp.helo_name,
        pipelining=smtp.pipelining,
    )


def _api(url: str, config: Config) -> HttpApiTransport:
    from comms.mail.http_api import HttpApiTransport

    parts = urlsplit(url)
    if not parts.hostname:
        raise _bad(url, "no host (e.g. brevo+https://api.brevo.com)")
    secure = SCHEMES[parts.scheme].security == "tls"
    if not secure and not _is_loopback(parts.hostname):
        raise _bad(url, "plain http only to localhost; use brevo+https://")
    api = config.settings.api
    if not api.key:
        raise _bad(url, "the API key must be set in COMMS_API_KEY")
    base = f"{'https' if secure else 'http'}://{parts.netloc}{parts.path.rstrip('/')}"
    return HttpApiTransport(
        base + "/v3/smtp/email",
        api.key,
        timeout=api.timeout,
        max_attempts=api.max_attempts,
        max_wait=api.max_wait,
    )


def _file(url: str, config: Config) -> FileTransport:
    folder = transport_folder(url, config.root)
    if folder is None:
        raise _bad(url, "no folder (e.g. file:///var/outbox or file://var/outbox)")
    return FileTransport(folder)


def _memory(url: str, config: Config) -> MemoryTransport:
    return MemoryTransport(memory_outbox(url[len("memory://") :]))


#: How each kind of scheme in the registry (comms.core.transport_url.SCHEMES) is opened.
_OPENERS: dict[Kind, Callable[[str, Config], Transport]] = {
    "smtp": _smtp,
    "api": _api,
    "file": _file,
    "memory": _memory,
}


def open_transport(url: str, config: Config) -> Transport:
    """A transport for `url`; its secrets (COMMS_SMTP_PASSWORD, COMMS_API_KEY) come from the
    settings, which read them from the environment."""
    try:
        urlsplit(url)  # raises for a broken host such as "[::1"
    except ValueError as exc:
        raise _bad(url, f"not a valid URL: {exc}") from None
    scheme = SCHEMES.get(scheme_of(url))
    if scheme is None:
        raise _bad(url, f"unknown scheme; use {known_schemes()}")
    return _OPENERS[scheme.kind](url, config)
