"""Transports: how a finished message leaves (SMTP, HTTP API, .eml files, memory).

Every failure is classified (docs/requirements.md S5/S7): TemporaryFailure (4xx, timeouts, dropped
connections; `ambiguous` when the connection died after the message went out), PermanentFailure
(5xx for this address) or PolicyRejection (5.7.x, refused sender, AUTH or TLS failures: our
setup is at fault, so the campaign stops and no address is blamed). One instance per thread.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

from comms.core.config import Config
from comms.core.errors import ConfigError, DeliveryError, PolicyRejection
from comms.core.files import write_private
from comms.mail.http_api import HttpApiTransport
from comms.mail.replies import classify
from comms.mail.smtp import SmtpTransport

__all__ = [
    "FileTransport",
    "HttpApiTransport",
    "MemoryTransport",
    "SentMessage",
    "SmtpTransport",
    "Transport",
    "classify",
    "memory_outbox",
    "open_transport",
]


class Transport(Protocol):
    """Sends finished bytes; raises TemporaryFailure, PermanentFailure or PolicyRejection."""

    def send(self, envelope_from: str, recipient: str, data: bytes, key: str) -> None:
        """Deliver `data` to one recipient; `key` is the idempotency key (stable per delivery)."""

    def close(self) -> None:
        """Release connections."""


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

    def send(self, envelope_from: str, recipient: str, data: bytes, key: str) -> None:
        """Write the message atomically as a 0600 file in 0700 folders: it holds live links."""
        path = self.path_for(key)
        try:
            write_private(path, data)
        except OSError as exc:
            # Not the address's fault, and every further message would fail the same way.
            raise PolicyRejection(f"cannot write {path}: {exc.strerror}") from None

    def close(self) -> None:
        """Nothing to release."""


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

    def send(self, envelope_from: str, recipient: str, data: bytes, key: str) -> None:
        """Record the message, or raise the next scripted failure for this recipient."""
        scripted = self.failures.get(recipient)
        if scripted:
            raise scripted.pop(0)
        self.sent.append(SentMessage(envelope_from, recipient, data, key))

    def close(self) -> None:
        """Nothing to release."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_MODES: dict[str, Literal["plain", "starttls", "tls"]] = {
    "smtp": "plain",
    "smtp+starttls": "starttls",
    "smtps": "tls",
}


def _bad(url: str, problem: str) -> ConfigError:
    return ConfigError([f"transport {url!r}: {problem}"])


def _smtp(url: str, config: Config, environ: Mapping[str, str]) -> SmtpTransport:
    parts = urlsplit(url)
    mode = _MODES[parts.scheme]
    try:
        port = parts.port or {"plain": 25, "starttls": 587, "tls": 465}[mode]
    except ValueError:
        raise _bad(url, "the port is not a number") from None
    host = parts.hostname
    if not host:
        raise _bad(url, "no host (e.g. smtp+starttls://mail.example.org:587)")
    if parts.password is not None:
        raise _bad(url, "no password in the URL; set COMMS_SMTP_PASSWORD")
    smtp = config.settings.smtp
    username = unquote(parts.username) if parts.username else smtp.username
    password = environ.get("COMMS_SMTP_PASSWORD")
    if username and not password:
        raise _bad(url, f"user {username!r} needs a password in COMMS_SMTP_PASSWORD")
    if username and mode == "plain" and not _is_loopback(host):
        raise _bad(url, "refusing to log in without TLS; use smtp+starttls:// or smtps://")
    ca_file = None
    if smtp.ca_file:
        ca_path = (config.root / Path(smtp.ca_file).expanduser()).resolve()
        if not ca_path.is_file():
            raise ConfigError([f"'smtp.ca_file': {ca_path} not found"])
        ca_file = str(ca_path)
    return SmtpTransport(
        host,
        port,
        mode=mode,
        username=username,
        password=password,
        timeout=smtp.timeout,
        max_per_connection=smtp.max_messages_per_connection,
        ca_file=ca_file,
        helo_name=smtp.helo_name,
        pipelining=smtp.pipelining,
    )


def open_transport(url: str, config: Config, environ: Mapping[str, str] | None = None) -> Transport:
    """A transport for `url`; secrets (COMMS_SMTP_PASSWORD, COMMS_API_KEY) from `environ`."""
    environ = os.environ if environ is None else environ
    try:
        urlsplit(url)  # raises for a broken host such as "[::1"
    except ValueError as exc:
        raise _bad(url, f"not a valid URL: {exc}") from None
    scheme = url.partition("://")[0]
    if "://" not in url:
        scheme = ""
    if scheme in ("smtp", "smtp+starttls", "smtps"):
        return _smtp(url, config, environ)
    if scheme == "file":
        rest = unquote(url[len("file://") :])
        if not rest:
            raise _bad(url, "no folder (e.g. file:///var/outbox or file://var/outbox)")
        return FileTransport((config.root / rest).resolve())
    if scheme == "memory":
        return MemoryTransport(memory_outbox(url[len("memory://") :]))
    if scheme in ("brevo+https", "brevo+http"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise _bad(url, "no host (e.g. brevo+https://api.brevo.com)")
        if scheme == "brevo+http" and not _is_loopback(parts.hostname):
            raise _bad(url, "plain http only to localhost; use brevo+https://")
        api_key = environ.get("COMMS_API_KEY")
        if not api_key:
            raise _bad(url, "the API key must be set in COMMS_API_KEY")
        base = f"{scheme.removeprefix('brevo+')}://{parts.netloc}{parts.path.rstrip('/')}"
        api = config.settings.api
        return HttpApiTransport(
            base + "/v3/smtp/email",
            api_key,
            timeout=api.timeout,
            max_attempts=api.max_attempts,
            max_wait=api.max_wait,
        )
    raise _bad(
        url,
        "unknown scheme; use smtp://, smtp+starttls://, smtps://, file://, memory:// "
        "or brevo+https://",
    )
