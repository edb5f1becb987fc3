"""Real SMTP servers for tests: aiosmtpd on 127.0.0.1, scripted faults, a throwaway CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Certs:
    """A private CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The server side TLS context."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certs(folder: Path) -> Certs:
    """Write a CA certificate and a CA-signed server certificate (EC keys: fast) to `folder`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("comms test CA"))
        .issuer_name(_name("comms test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    certs = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    certs.ca_file.write_bytes(ca.public_bytes(pem))
    certs.cert_file.write_bytes(cert.public_bytes(pem))
    certs.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certs


@dataclass
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: int


@dataclass
class Handler:
    """An aiosmtpd handler that records everything and injects scripted faults.

    `rcpt_replies[address]` answers RCPT TO; `data_replies[address]` answers the end of DATA
    (recorded as received first); the key "*" in either answers every address;
    `drop_after_data` holds addresses whose connection is cut after the message arrived, before
    the reply; `close_after` ends every session after that
    many messages without a word (as Yahoo does); `pipelining` advertises RFC 2920.
    `greylist` holds addresses whose first RCPT gets `451 4.7.1` (greylisting, as many German
    providers do); `mail_reply` answers every MAIL FROM (e.g. a 421 that defers everything).
    """

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    drop_after_data: set[str] = field(default_factory=set)
    slow_data: dict[str, float] = field(default_factory=dict)
    close_after: int | None = None
    pipelining: bool = False
    greylist: set[str] = field(default_factory=set)
    mail_reply: str | None = None
    greylisted: list[str] = field(default_factory=list)
    mail_commands: int = 0
    received: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    #: Bytes already waiting behind each MAIL command: > 0 means the client pipelined.
    waiting_at_mail: list[int] = field(default_factory=list)
    connections: int = 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.mail_commands += 1
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.greylist and address not in self.greylisted:
            self.greylisted.append(address)
            return "451 4.7.1 Greylisted, please try again later"
        reply = self.rcpt_replies.get(address, self.rcpt_replies.get("*"))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0]
        number = getattr(session, "number", None)
        if number is None:
            self.connections += 1
            number = session.number = self.connections  # type: ignore[attr-defined]
        assert isinstance(envelope.content, bytes)  # the controller keeps bytes (no decode_data)
        self.received.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), envelope.content, number)
        )
        if rcpt in self.slow_data:
            await asyncio.sleep(self.slow_data[rcpt])
        assert isinstance(server.transport, asyncio.Transport)  # set while a connection is open
        if rcpt in self.drop_after_data:
            server.transport.abort()
            return "250 lost"
        count = session.count = getattr(session, "count", 0) + 1  # type: ignore[attr-defined]
        if self.close_after is not None and count >= self.close_after:
            server.loop.call_soon(server.transport.close)
        return self.data_replies.get(rcpt, self.data_replies.get("*", "250 2.0.0 OK queued"))


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP that logs each command name to the handler (for order checks)."""

    def _log(self, name: str) -> None:
        self.event_handler.commands.append(name)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._log("EHLO")
        await super().smtp_EHLO(hostname)

    async def smtp_STARTTLS(self, arg: str) -> None:
        self._log("STARTTLS")
        await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        self._log("AUTH")
        await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        self._log("MAIL")
        # How much of the client's pipeline is buffered: asyncio's StreamReader keeps it private.
        buffered = len(self._reader._buffer)  # type: ignore[attr-defined]
        self.event_handler.waiting_at_mail.append(buffered)
        await super().smtp_MAIL(arg)

    async def smtp_RSET(self, arg: str) -> None:
        self._log("RSET")
        await super().smtp_RSET(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        self._log("QUIT")
        await super().smtp_QUIT(arg)


class RecordingController(Controller):
    """A Controller that serves RecordingSMTP."""

    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


def authenticator(user: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting exactly one login."""

    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        ok = data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_server(handler: Handler, **kwargs: Any) -> Iterator[int]:
    """Run `handler` on 127.0.0.1 (plain unless TLS kwargs are given); yields the port."""
    port = free_port()
    controller = RecordingController(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
