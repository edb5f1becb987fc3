"""SMTP transport against real aiosmtpd servers on 127.0.0.1 (docs/requirements.md S1–S5, S7)."""

from __future__ import annotations

import dataclasses
import email
import io
import smtplib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from comms.core.config import Config, load_config
from comms.core.errors import (
    ConfigError,
    DeliveryError,
    PermanentFailure,
    PolicyRejection,
    TemporaryFailure,
    Unreachable,
)
from comms.mail.message import MessageFactory, OutgoingMessage, Recipient
from comms.mail.replies import classify, classify_http
from comms.mail.smtp import NeedsSmtpUtf8, SmtpTransport, _getreply
from comms.mail.transports import open_transport

from .issue_sample import SECRET, config_for, rendered_issue
from .smtp_servers import Certs, Handler, authenticator, free_port, make_certs, smtp_server

ENV = {"COMMS_SMTP_PASSWORD": "geheim"}


def _with_password(folder: Path, extra: str = "", environ: dict[str, str] = ENV) -> Config:
    """A Config from a comms.toml holding `extra`, its secrets from `environ` (the password)."""
    path = folder / "comms.toml"
    path.write_text(extra, encoding="utf-8")
    return load_config(path, environ=environ)


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> list[OutgoingMessage]:
    factory = MessageFactory(config_for(tmp_path_factory.mktemp("cfg")), rendered_issue(), SECRET)
    return [factory.build(Recipient(str(i), f"leser{i}@example.org")) for i in range(30)]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _send(transport: SmtpTransport, message: OutgoingMessage) -> None:
    transport.send(message.envelope_from, message.recipient, message.data, message.key)


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelining"])
def handler(request: pytest.FixtureRequest) -> Handler:
    return Handler(pipelining=request.param)


@pytest.fixture
def plain(handler: Handler) -> Iterator[SmtpTransport]:
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=10)
        yield transport
        transport.close()


def test_many_messages_over_few_connections_arrive_byte_for_byte(
    plain: SmtpTransport, handler: Handler, messages: list[OutgoingMessage]
) -> None:
    for message in messages[:25]:
        _send(plain, message)
    plain.close()
    assert [r.rcpt_tos for r in handler.received] == [[m.recipient] for m in messages[:25]]
    assert [r.data for r in handler.received] == [m.data for m in messages[:25]]
    assert {r.mail_from for r in handler.received} == {"newsletter@example.org"}
    # The cap of 10 per connection: 10 + 10 + 5, each session ended with QUIT.
    assert [r.connection for r in handler.received] == [1] * 10 + [2] * 10 + [3] * 5
    assert plain.connections == 3
    assert handler.commands.count("QUIT") == 3
    # RCPT TO and DATA travel with MAIL FROM only when the server offers PIPELINING.
    pipelined = [waiting > 0 for waiting in handler.waiting_at_mail]
    assert pipelined == [handler.pipelining] * 25


def test_a_leading_dot_survives_dot_stuffing(plain: SmtpTransport, handler: Handler) -> None:
    data = b".From: x@example.org\r\n\r\n.\r\n..two\r\nend"
    plain.send("a@example.org", "b@example.org", data, "k/1")
    assert handler.received[0].data == data + b"\r\n"


def test_the_factorys_stuffed_copy_arrives_as_the_message(
    plain: SmtpTransport, handler: Handler, tmp_path: Path
) -> None:
    issue = rendered_issue()
    issue = dataclasses.replace(issue, text=issue.text + ".und weiter\n")
    factory = MessageFactory(config_for(tmp_path), issue, SECRET)
    message = factory.build(Recipient("u1", "leser1@example.org"))
    assert message.wire is not None and message.wire != message.data
    plain.send(
        message.envelope_from, message.recipient, message.data, message.key, wire=message.wire
    )
    assert handler.received[0].data == message.data


def test_a_gate_holds_the_message_before_its_final_dot(
    plain: SmtpTransport, handler: Handler, messages: list[OutgoingMessage]
) -> None:
    seen: list[int] = []

    def gate() -> None:
        # The whole body is on the wire by now, yet the server has taken nothing.
        seen.append(len(handler.received))

    first, second = messages[0], messages[1]
    plain.send(first.envelope_from, first.recipient, first.data, first.key, gate)
    plain.send(second.envelope_from, second.recipient, second.data, second.key, gate)
    assert seen == [0, 1]
    assert [r.data for r in handler.received] == [first.data, second.data]
    assert plain.connections == 1


def _server_noting_the_body(listener: socket.socket, body: threading.Event) -> None:
    """One session that offers PIPELINING and sets `body` when the first bytes of a message
    body arrive; takes the message and the QUIT."""
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"220 test\r\n")
        received = b""
        while b"DATA\r\n" not in received.upper():
            received += conn.recv(65536)
            if received.upper().startswith(b"EHLO") and received.endswith(b"\r\n"):
                conn.sendall(b"250-test\r\n250 PIPELINING\r\n")
                received = b""
        conn.sendall(b"250 ok\r\n250 ok\r\n354 go on\r\n")
        received = conn.recv(65536)
        body.set()
        while not received.endswith(b"\r\n.\r\n"):
            received += conn.recv(65536)
        conn.sendall(b"250 taken\r\n")
        if conn.recv(65536).upper().startswith(b"QUIT"):
            conn.sendall(b"221 bye\r\n")


class _Gate:
    """A caller's gate that says whether it would let the message go at once."""

    def __init__(self, ready: bool, body: threading.Event) -> None:
        self.is_ready, self.body = ready, body
        self.body_was_sent: list[bool] = []

    def __call__(self) -> None:
        self.body_was_sent.append(self.body.wait(0.3))

    def ready(self) -> bool:
        return self.is_ready


@pytest.mark.parametrize("ready", [True, False], ids=["ready", "waiting"])
def test_a_gate_that_is_ready_goes_first_and_the_body_leaves_with_its_dot(
    messages: list[OutgoingMessage], ready: bool
) -> None:
    body = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=_server_noting_the_body, args=(listener, body))
        server.start()
        transport = SmtpTransport("127.0.0.1", listener.getsockname()[1], timeout=5)
        gate = _Gate(ready, body)
        message = messages[0]
        transport.send(message.envelope_from, message.recipient, message.data, message.key, gate)
        transport.close()
        server.join()
    # Ready: nothing to overlap, so the gate is asked before the body goes (in one write with
    # its "."); else the body is on the wire while the gate waits.
    assert gate.body_was_sent == [not ready]


class Refused(Exception):
    """What a caller's gate raises when the message must not go."""


def test_a_gate_that_raises_leaves_the_message_unsent_and_the_transport_usable(
    plain: SmtpTransport, handler: Handler, messages: list[OutgoingMessage]
) -> None:
    def refuse() -> None:
        raise Refused

    held, after = messages[0], messages[1]
    with pytest.raises(Refused):
        plain.send(held.envelope_from, held.recipient, held.data, held.key, refuse)
    _send(plain, after)  # on a new connection: the old one ended mid-DATA
    assert [r.rcpt_tos for r in handler.received] == [[after.recipient]]
    assert plain.connections == 2


def _server_that_times_out_mid_data(
    listener: socket.socket, held: threading.Event, gone: threading.Event, seen: list[bytes]
) -> None:
    """One session: offers PIPELINING, opens DATA, then (once the client holds the message)
    hangs up without a word, as a server whose DATA timeout ran out."""
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"220 test\r\n")
        received = b""
        while b"DATA\r\n" not in received.upper():
            chunk = conn.recv(65536)
            if not chunk:
                return
            received += chunk
            if received.upper().startswith(b"EHLO") and received.endswith(b"\r\n"):
                conn.sendall(b"250-test\r\n250 PIPELINING\r\n")
                received = b""
        conn.sendall(b"250 ok\r\n250 ok\r\n354 go on\r\n")
        held.wait(5)
        conn.settimeout(0.2)
        try:
            while chunk := conn.recv(65536):
                seen.append(chunk)
        except OSError:
            pass
    gone.set()


def test_a_server_that_hangs_up_while_the_message_is_held_did_not_get_it(
    messages: list[OutgoingMessage],
) -> None:
    held, gone = threading.Event(), threading.Event()
    seen: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        args = (listener, held, gone, seen)
        server = threading.Thread(target=_server_that_times_out_mid_data, args=args)
        server.start()
        transport = SmtpTransport("127.0.0.1", listener.getsockname()[1], timeout=5)

        def gate() -> None:
            held.set()
            assert gone.wait(5)

        message = messages[0]
        with pytest.raises(TemporaryFailure) as info:
            transport.send(
                message.envelope_from, message.recipient, message.data, message.key, gate
            )
        server.join()
    # Dropped before the "." (nothing delivered, safe to send again), not ambiguous.
    assert not info.value.ambiguous
    assert not b"".join(seen).endswith(b"\r\n.\r\n")


def test_no_gate_for_an_address_the_server_refuses(
    plain: SmtpTransport, handler: Handler, messages: list[OutgoingMessage]
) -> None:
    calls: list[str] = []
    bad = messages[0]
    handler.rcpt_replies[bad.recipient] = "550 5.1.1 No such user"
    with pytest.raises(PermanentFailure):
        plain.send(bad.envelope_from, bad.recipient, bad.data, bad.key, lambda: calls.append("x"))
    assert calls == []


@pytest.mark.parametrize(
    ("reply", "kind", "code", "enhanced"),
    [
        ("451 4.3.0 Try again later", TemporaryFailure, 451, "4.3.0"),
        ("452 4.2.2 Mailbox full", TemporaryFailure, 452, "4.2.2"),
        ("550 5.1.1 No such user", PermanentFailure, 550, "5.1.1"),
        ("551 User not local", PermanentFailure, 551, None),
        ("553 Mailbox name not allowed", PermanentFailure, 553, None),
        ("550 5.2.1 Mailbox disabled", PermanentFailure, 550, "5.2.1"),
        ("550 5.1.10 Recipient address rejected: null MX", PermanentFailure, 550, "5.1.10"),
        # About our message or session, not the address: must not bounce anyone.
        ("554 Rejected", PolicyRejection, 554, None),
        ("500 Error: command not recognized", PolicyRejection, 500, None),
        ("501 5.5.2 Syntax error", PolicyRejection, 501, "5.5.2"),
        ("550 5.3.0 Mail system failure", PolicyRejection, 550, "5.3.0"),
        ("550 5.7.26 Unauthenticated email is not accepted", PolicyRejection, 550, "5.7.26"),
        ("550 5.7.1 Blocked by policy", PolicyRejection, 550, "5.7.1"),
        ("552 5.5.3 Too many recipients", TemporaryFailure, 552, "5.5.3"),
        ("552 Too many recipients", TemporaryFailure, 552, None),
    ],
)
def test_rcpt_replies_are_classified_and_the_connection_stays_usable(
    plain: SmtpTransport,
    handler: Handler,
    messages: list[OutgoingMessage],
    reply: str,
    kind: type[Exception],
    code: int,
    enhanced: str | None,
) -> None:
    bad, good = messages[0], messages[1]
    handler.rcpt_replies[bad.recipient] = reply
    with pytest.raises(kind) as info:
        _send(plain, bad)
    assert type(info.value) is kind
    assert (info.value.code, info.value.enhanced, info.value.ambiguous) == (code, enhanced, False)  # type: ignore[attr-defined]
    assert str(info.value) == f"127.0.0.1:{plain.port}: RCPT TO: {reply}"
    _send(plain, good)  # RSET, same connection
    assert [r.rcpt_tos for r in handler.received] == [[good.recipient]]
    assert "RSET" in handler.commands
    assert plain.connections == 1


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("451 4.7.1 Greylisted, come back later", TemporaryFailure),
        ("554 5.6.0 Message content rejected", PolicyRejection),
        ("552 5.3.4 Message too big", PolicyRejection),
        ("550 5.1.1 No such user", PolicyRejection),  # at end of DATA: about the message
        ("550 5.7.515 Access denied, sending domain does not meet requirements", PolicyRejection),
    ],
)
def test_replies_after_data_are_classified(
    plain: SmtpTransport,
    handler: Handler,
    messages: list[OutgoingMessage],
    reply: str,
    kind: type[Exception],
) -> None:
    handler.data_replies[messages[0].recipient] = reply
    with pytest.raises(kind) as info:
        _send(plain, messages[0])
    assert type(info.value) is kind
    assert str(info.value) == f"127.0.0.1:{plain.port}: end of DATA: {reply}"
    _send(plain, messages[1])
    assert plain.connections == 1


def test_drop_after_data_is_temporary_and_ambiguous(
    plain: SmtpTransport, handler: Handler, messages: list[OutgoingMessage]
) -> None:
    lost, after = messages[0], messages[1]
    handler.drop_after_data.add(lost.recipient)
    with pytest.raises(TemporaryFailure) as info:
        _send(plain, lost)
    assert info.value.ambiguous is True
    assert "the server may have accepted it" in str(info.value)
    # The caller retries: the same bytes, so the same Message-ID (S7).
    handler.drop_after_data.clear()
    _send(plain, lost)
    _send(plain, after)
    first, retry, _ = handler.received
    assert first.data == retry.data
    assert email.message_from_bytes(retry.data)["Message-ID"] == lost.message_id
    assert plain.connections == 2


def test_server_closing_sessions_silently_costs_no_message_and_no_duplicate(
    handler: Handler, messages: list[OutgoingMessage]
) -> None:
    handler.close_after = 3
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=100)
        for message in messages[:10]:
            _send(transport, message)
        transport.close()
    assert [r.rcpt_tos[0] for r in handler.received] == [m.recipient for m in messages[:10]]
    assert transport.connections == 4


def test_unreachable_server_is_a_temporary_failure() -> None:
    transport = SmtpTransport("127.0.0.1", free_port(), timeout=2)
    with pytest.raises(Unreachable, match=r"^cannot connect to 127\.0\.0\.1:\d+: "):
        transport.send("a@example.org", "b@example.org", b"x\r\n", "k/1")


def test_a_silent_server_times_out(tmp_path: Path) -> None:
    import socket

    with socket.socket() as listener:  # accepts connections, never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        transport = SmtpTransport("127.0.0.1", listener.getsockname()[1], timeout=0.5)
        with pytest.raises(Unreachable, match="timed out"):  # after the 0.5 s given
            transport.send("a@example.org", "b@example.org", b"x\r\n", "k/1")


def _starttls_url(port: int) -> str:
    return f"smtp+starttls://newsletter@127.0.0.1:{port}"


def test_starttls_verifies_the_certificate_unless_its_ca_is_configured(
    certs: Certs, tmp_path: Path, messages: list[OutgoingMessage]
) -> None:
    handler = Handler()
    kwargs = {
        "tls_context": certs.server_context(),
        "require_starttls": True,
        "authenticator": authenticator("newsletter", "geheim"),
    }
    with smtp_server(handler, **kwargs) as port:
        untrusted = open_transport(_starttls_url(port), _with_password(tmp_path))
        with pytest.raises(PolicyRejection) as info:
            _send(untrusted, messages[0])  # type: ignore[arg-type]
        assert str(info.value) == (
            f"TLS certificate of 127.0.0.1:{port} not trusted (unable to get local issuer "
            "certificate); trust a private CA with smtp.ca_file"
        )
        assert handler.received == []
        config = _with_password(tmp_path, f'[smtp]\nca_file = "{certs.ca_file}"\n')
        trusted = open_transport(_starttls_url(port), config)
        assert isinstance(trusted, SmtpTransport)
        assert trusted.context is not None
        assert trusted.context.verify_mode == ssl.CERT_REQUIRED
        assert trusted.context.check_hostname is True
        _send(trusted, messages[0])
        trusted.close()
    assert handler.received[0].data == messages[0].data
    assert handler.commands == ["EHLO", "STARTTLS", "EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL"] + [
        "QUIT"
    ]


def test_starttls_fails_closed_when_the_server_does_not_offer_it(
    handler: Handler, messages: list[OutgoingMessage], tmp_path: Path
) -> None:
    with smtp_server(handler) as port:
        transport = open_transport(f"smtp+starttls://127.0.0.1:{port}", config_for(tmp_path))
        with pytest.raises(PolicyRejection) as info:
            _send(transport, messages[0])  # type: ignore[arg-type]
    assert str(info.value) == (
        f"127.0.0.1:{port} does not offer STARTTLS; refusing to send in clear text"
    )
    assert handler.received == []


def test_wrong_password_stops_the_campaign(
    certs: Certs, tmp_path: Path, messages: list[OutgoingMessage]
) -> None:
    handler = Handler()
    kwargs = {
        "tls_context": certs.server_context(),
        "authenticator": authenticator("newsletter", "richtig"),
    }
    config = _with_password(tmp_path, f'[smtp]\nca_file = "{certs.ca_file}"\n')
    with smtp_server(handler, **kwargs) as port:
        transport = open_transport(_starttls_url(port), config)
        with pytest.raises(PolicyRejection) as info:
            _send(transport, messages[0])  # type: ignore[arg-type]
    assert info.value.code == 535
    assert info.value.enhanced == "5.7.8"


def test_implicit_tls(certs: Certs, tmp_path: Path, messages: list[OutgoingMessage]) -> None:
    handler = Handler()
    config = config_for(tmp_path, f'[smtp]\nca_file = "{certs.ca_file}"\n')
    with smtp_server(handler, ssl_context=certs.server_context()) as port:
        transport = open_transport(f"smtps://127.0.0.1:{port}", config)
        _send(transport, messages[0])  # type: ignore[arg-type]
        transport.close()
        untrusted = open_transport(f"smtps://127.0.0.1:{port}", config_for(tmp_path))
        with pytest.raises(PolicyRejection, match="not trusted"):
            _send(untrusted, messages[1])  # type: ignore[arg-type]
    assert [r.data for r in handler.received] == [messages[0].data]


@pytest.mark.parametrize(
    ("url", "env", "problem"),
    [
        ("smtp://mail.example.org:25x", {}, "the port is not a number"),
        ("smtp://", {}, "no host (e.g. smtp+starttls://mail.example.org:587)"),
        ("smtp://u:pw@mail.example.org", ENV, "no password in the URL; set COMMS_SMTP_PASSWORD"),
        ("smtps://u@mail.example.org", {}, "user 'u' needs a password in COMMS_SMTP_PASSWORD"),
        (
            "smtp://u@mail.example.org",
            ENV,
            "refusing to log in without TLS; use smtp+starttls:// or smtps://",
        ),
        (
            "ftp://mail.example.org",
            {},
            "unknown scheme; use smtp://, smtp+starttls://, smtps://, file://, memory://, "
            "brevo+https://, brevo+http://",
        ),
        ("brevo+https://api.brevo.com", {}, "the API key must be set in COMMS_API_KEY"),
        ("brevo+http://api.brevo.com", {}, "plain http only to localhost; use brevo+https://"),
    ],
)
def test_bad_transport_urls_name_the_problem(
    tmp_path: Path, url: str, env: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        open_transport(url, _with_password(tmp_path, environ=env))
    shown = url.replace(":pw@", ":***@")  # a password in the URL is never echoed
    assert info.value.problems == [f"transport {shown!r}: {problem}"]


def test_defaults_from_the_url_and_config(tmp_path: Path) -> None:
    config = _with_password(
        tmp_path, '[smtp]\ntimeout = 7\nmax_messages_per_connection = 50\nusername = "nl"\n'
    )
    transport = open_transport("smtp+starttls://mail.example.org", config)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.mode) == ("mail.example.org", 587, "starttls")
    assert (transport.username, transport.password) == ("nl", "geheim")
    assert (transport.timeout, transport.max_per_connection) == (7, 50)
    assert open_transport("smtps://mail.example.org", config).port == 465  # type: ignore[attr-defined]
    # Logging in over plain SMTP is allowed to a relay on the same machine only.
    local = open_transport("smtp://nl@localhost:2525", config)
    assert local.mode == "plain"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="'smtp.ca_file': .* not found"):
        open_transport("smtps://x.example.org", config_for(tmp_path, '[smtp]\nca_file = "no"\n'))


@pytest.mark.parametrize(
    ("code", "text", "stage", "kind"),
    [
        (421, "4.3.2 Service shutting down", "MAIL FROM", TemporaryFailure),
        (550, "5.1.8 Bad sender domain", "MAIL FROM", PolicyRejection),
        (535, "5.7.8 Authentication credentials invalid", "AUTH", PolicyRejection),
        (554, "No SMTP service here", "connect", PolicyRejection),
        (550, "5.1.1 unknown", "RCPT TO", PermanentFailure),
        (552, "5.2.2 Mailbox full", "RCPT TO", TemporaryFailure),
        # docs/architecture.md "Decisions kept": a full mailbox is soft at any stage, as in a
        # DSN; no such domain is an address-level hard bounce, as in a DSN.
        (550, "5.2.2 Mailbox full", "RCPT TO", TemporaryFailure),
        (552, "5.2.2 Quota exceeded", "end of DATA", TemporaryFailure),
        (550, "5.4.4 Unable to route: no such domain", "RCPT TO", PermanentFailure),
        (550, "5.4.4 Unable to route", "end of DATA", PolicyRejection),
        # About our envelope sender, though refused at RCPT (Postfix's delayed rejection).
        (553, "5.1.8 Sender address rejected: Domain not found", "RCPT TO", PolicyRejection),
        # X.0.0 only says "failed": the basic code decides, as without an enhanced code.
        (550, "5.0.0 User unknown", "RCPT TO", PermanentFailure),
        (554, "5.0.0 Blocked", "RCPT TO", PolicyRejection),
        (550, "Mailbox full", "RCPT TO", TemporaryFailure),
        (550, "Mailbox unavailable", "RCPT TO", PermanentFailure),
        (554, "5.6.0 Message content rejected", "end of DATA", PolicyRejection),
        (552, "Message size exceeds fixed limit", "end of DATA", PolicyRejection),
        (550, "Mailbox unavailable", "end of DATA", PolicyRejection),
        (554, "Transaction failed", "DATA", PolicyRejection),
        (500, "Error: command not recognized", "RCPT TO", PolicyRejection),
        (504, "5.5.4 Unrecognized parameter", "RCPT TO", PolicyRejection),
    ],
)
def test_classification_table(code: int, text: str, stage: str, kind: type[Exception]) -> None:
    assert type(classify(code, text, stage)) is kind


def test_no_reply_to_the_message_in_time_is_ambiguous(
    handler: Handler, messages: list[OutgoingMessage]
) -> None:
    handler.slow_data[messages[0].recipient] = 0.8
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=0.3)
        with pytest.raises(TemporaryFailure) as info:
            _send(transport, messages[0])
        assert info.value.ambiguous is True
        _send(transport, messages[1])  # a new connection for the next message
        transport.close()
    assert [r.rcpt_tos[0] for r in handler.received] == [m.recipient for m in messages[:2]]
    assert transport.connections == 2


def test_a_plain_session_waits_with_the_kernels_timeout_and_still_times_out(
    handler: Handler, messages: list[OutgoingMessage]
) -> None:
    handler.slow_data[messages[1].recipient] = 0.8
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=0.3)
        _send(transport, messages[0])
        conn = transport._conn
        assert conn is not None and conn.sock is not None
        # No Python timeout: it would poll before every send and receive.
        assert conn.sock.gettimeout() is None
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            seconds, micros = struct.unpack(
                "@ll", conn.sock.getsockopt(socket.SOL_SOCKET, option, 16)
            )
            assert seconds + micros / 1e6 == pytest.approx(0.3, abs=0.02)
        with pytest.raises(TemporaryFailure, match="timed out") as info:
            _send(transport, messages[1])
        assert info.value.ambiguous is True
        _send(transport, messages[2])
        transport.close()
    assert [r.rcpt_tos[0] for r in handler.received] == [m.recipient for m in messages[:3]]


@pytest.mark.parametrize(
    "wire",
    [
        b"250 2.0.0 Ok: queued as 4XyZ\r\n",
        b"250 \r\n",
        b"354\r\n",
        b"550-5.1.1 no such user\r\n550-second line\r\n550 5.1.1 last\r\n",
        b"25O oops\r\n",
        b"421 closing\r\n",
        b"",
        b"250 " + b"x" * 9000 + b"\r\n",
    ],
    ids=["one-line", "empty-text", "bare-code", "several-lines", "broken", "421", "gone", "long"],
)
def test_replies_read_as_smtplib_reads_them(wire: bytes) -> None:
    def outcome(read: Callable[[smtplib.SMTP], tuple[int, bytes]]) -> object:
        conn = smtplib.SMTP()
        # What follows the reply must stay unread.
        rest = b"250 next\r\n" if wire else b""
        conn.file = io.BufferedReader(io.BytesIO(wire + rest))
        try:
            return read(conn), conn.file and conn.file.read()
        except smtplib.SMTPException as exc:
            return type(exc), str(exc)

    assert outcome(_getreply) == outcome(smtplib.SMTP.getreply)


def test_login_over_plain_smtp_to_a_local_relay(
    handler: Handler, messages: list[OutgoingMessage], tmp_path: Path
) -> None:
    auth = {"authenticator": authenticator("relay", "geheim"), "auth_require_tls": False}
    with smtp_server(handler, **auth) as port:
        transport = open_transport(f"smtp://relay@127.0.0.1:{port}", _with_password(tmp_path))
        _send(transport, messages[0])  # type: ignore[arg-type]
        transport.close()
    assert handler.commands[:3] == ["EHLO", "AUTH", "MAIL"]
    assert len(handler.received) == 1


@pytest.mark.parametrize(
    ("status", "detail", "kind"),
    [
        (400, '{"message":"email is not valid in to"}', PermanentFailure),
        (400, '{"message":"b@example.org is not a valid address"}', PermanentFailure),
        (400, '{"message":"unable to parse the request body"}', PolicyRejection),
        (404, '{"message":"b@example.org not found"}', PolicyRejection),
        (422, '{"message":"b@example.org unprocessable"}', PolicyRejection),
        (500, "internal error", TemporaryFailure),
        (503, "b@example.org: service unavailable", TemporaryFailure),
    ],
)
def test_only_a_400_naming_the_recipient_is_an_http_bounce(
    status: int, detail: str, kind: type[Exception]
) -> None:
    """The HTTP API counterpart of the SMTP table (classify_http, docs/requirements.md S8)."""
    assert type(classify_http(status, detail, "b@example.org", None, "api")) is kind


# -- the reply to the final "." read behind the next message's commands (`then`) --------------


class _Told:
    """The results a transport tells its `then` callbacks, by message number."""

    def __init__(self) -> None:
        self.results: dict[int, DeliveryError | None] = {}
        #: Messages whose result `send` knew when it returned (it told no `then`).
        self.at_once: set[int] = set()

    def then(self, number: int) -> Callable[[DeliveryError | None], None]:
        def told(failure: DeliveryError | None) -> None:
            assert number not in self.results, f"message {number} told twice"
            self.results[number] = failure

        return told


def _later(
    transport: SmtpTransport,
    message: OutgoingMessage,
    told: _Told,
    number: int,
    gate: Callable[[], None] | None = None,
) -> bool:
    later = transport.send(
        message.envelope_from,
        message.recipient,
        message.data,
        message.key,
        gate,
        message.wire,
        then=told.then(number),
    )
    if not later:  # known at once: the server took it (a refusal raises)
        told.results[number] = None
        told.at_once.add(number)
    return later


def test_with_pipelining_each_reply_is_read_behind_the_next_messages_commands(
    messages: list[OutgoingMessage],
) -> None:
    handler, told = Handler(pipelining=True), _Told()
    known_at_gate: list[list[int]] = []
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=100)
        for number, message in enumerate(messages[:5]):
            # The gate of each message finds the result of the one before already told: a
            # caller that waits there for that result to be recorded keeps at most one
            # message per connection sent and unrecorded.
            gate = lambda: known_at_gate.append(sorted(told.results))  # noqa: E731
            assert _later(transport, message, told, number, gate) is True
            assert sorted(told.results) == list(range(number))
        transport.flush()
        assert told.results == dict.fromkeys(range(5))
        transport.close()
    assert known_at_gate == [list(range(n)) for n in range(5)]
    assert [r.data for r in handler.received] == [m.data for m in messages[:5]]
    assert transport.connections == 1


def test_without_pipelining_the_result_is_known_when_send_returns(
    messages: list[OutgoingMessage],
) -> None:
    handler, told = Handler(pipelining=False), _Told()
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        assert _later(transport, messages[0], told, 0) is False
        assert _later(transport, messages[1], told, 1) is False
        transport.close()
    assert told.at_once == {0, 1}
    assert len(handler.received) == 2


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("452 4.2.2 Mailbox full", TemporaryFailure),
        ("550 5.1.1 No such user", PolicyRejection),  # at end of DATA: about the message
        ("554 5.7.1 Message rejected as spam", PolicyRejection),
    ],
)
def test_a_refused_message_is_told_to_its_own_then(
    messages: list[OutgoingMessage], reply: str, kind: type[Exception]
) -> None:
    handler, told = Handler(pipelining=True), _Told()
    handler.data_replies[messages[1].recipient] = reply
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        for number, message in enumerate(messages[:3]):
            _later(transport, message, told, number)
        transport.close()
    assert told.results[0] is None and told.results[2] is None
    assert type(told.results[1]) is kind
    assert str(told.results[1]) == f"127.0.0.1:{port}: end of DATA: {reply}"
    assert transport.connections == 1


def test_a_connection_lost_before_the_reply_is_ambiguous_and_the_next_message_goes_on(
    messages: list[OutgoingMessage],
) -> None:
    handler, told = Handler(pipelining=True), _Told()
    lost = messages[1]
    handler.drop_after_data.add(lost.recipient)
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        for number, message in enumerate(messages[:3]):
            _later(transport, message, told, number)
        transport.close()
    assert told.results[0] is None and told.results[2] is None
    failure = told.results[1]
    assert isinstance(failure, TemporaryFailure) and failure.ambiguous
    assert "the server may have accepted it" in str(failure)
    # The third message went once, on a new connection: nothing of it had gone before.
    assert [r.rcpt_tos[0] for r in handler.received] == [m.recipient for m in messages[:3]]
    assert transport.connections == 2


def test_a_421_after_the_dot_ends_the_session_and_the_next_message_goes_on_a_new_one(
    messages: list[OutgoingMessage],
) -> None:
    handler, told = Handler(pipelining=True), _Told()
    handler.data_replies[messages[1].recipient] = "421 4.3.2 Shutting down"
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        for number, message in enumerate(messages[:3]):
            _later(transport, message, told, number)
        transport.close()
    failure = told.results[1]
    assert isinstance(failure, TemporaryFailure) and failure.code == 421
    assert not failure.ambiguous
    assert told.results[0] is None and told.results[2] is None
    assert transport.connections == 2


def _server_ending_sessions(
    listener: socket.socket, per_session: int, sessions: int, got: list[str]
) -> None:
    """`sessions` sessions that offer PIPELINING and hang up right after the reply to their
    `per_session`-th message, reading nothing more (as a server ending a session does);
    `got` collects the recipients of the messages taken."""
    listener.settimeout(5)
    for _ in range(sessions):
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 test\r\n")
            taken, rcpt = 0, ""
            while taken < per_session and (line := lines.readline()):
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-test\r\n250 PIPELINING\r\n")
                elif verb == b"RCPT":
                    rcpt = line.decode().split("<", 1)[1].split(">", 1)[0]
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    while lines.readline() not in (b".\r\n", b""):
                        pass
                    got.append(rcpt)
                    taken += 1
                    conn.sendall(b"250 taken\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")


def test_a_server_that_answers_and_hangs_up_costs_no_ambiguous_result(
    messages: list[OutgoingMessage],
) -> None:
    """A server that ends every session right after its reply to the third message: the
    next message's commands meet a closed connection, the reply before is read all the same,
    and that message goes again on a new connection: nothing is reported as maybe lost."""
    told, got = _Told(), list[str]()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=_server_ending_sessions, args=(listener, 3, 4, got))
        server.start()
        port = listener.getsockname()[1]
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=100)
        for number, message in enumerate(messages[:10]):
            _later(transport, message, told, number)
        transport.close()
        server.join()
    assert told.results == dict.fromkeys(range(10))
    assert got == [m.recipient for m in messages[:10]]
    assert transport.connections == 4


def test_a_server_that_answers_the_next_commands_before_it_hangs_up_is_learnt(
    messages: list[OutgoingMessage],
) -> None:
    """aiosmtpd ends each session after its third message only once it has answered the
    commands already buffered: the fourth message, pipelined behind the third's ".", meets
    a server that said 354 and then hung up, so its result is ambiguous (it never arrived).
    From then on the reply to each session's third message is read at once, so the fourth
    meets the closed connection and goes again on a new one: no further ambiguity."""
    handler, told = Handler(pipelining=True, close_after=3), _Told()
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=100)
        for number, message in enumerate(messages[:12]):
            _later(transport, message, told, number)
        transport.close()
    ambiguous = {n for n, failure in told.results.items() if failure is not None}
    assert ambiguous <= {3}, told.results
    failures = [told.results[n] for n in ambiguous]
    assert all(isinstance(f, TemporaryFailure) and f.ambiguous for f in failures)
    assert sorted(told.results) == list(range(12))
    received = [r.rcpt_tos[0] for r in handler.received]
    assert received == [m.recipient for n, m in enumerate(messages[:12]) if n not in ambiguous]


@pytest.mark.parametrize("per_connection", [100, 2], ids=["flush", "series-end"])
def test_a_reply_lost_at_the_end_is_told_once_as_ambiguous(
    messages: list[OutgoingMessage], per_connection: int
) -> None:
    """The server cuts the connection after the second message, before its reply, which is
    owed: `flush` (or the close at the end of a series) tells it once, as ambiguous."""
    handler, told = Handler(pipelining=True), _Told()
    handler.drop_after_data.add(messages[1].recipient)
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=per_connection)
        _later(transport, messages[0], told, 0)
        _later(transport, messages[1], told, 1)
        transport.flush()
        transport.close()
    assert told.results[0] is None
    failure = told.results[1]
    assert isinstance(failure, TemporaryFailure) and failure.ambiguous


@pytest.mark.parametrize("pipelining", [False, True], ids=["read-at-once", "read-later"])
def test_a_reply_to_the_dot_too_long_to_read_is_ambiguous(
    messages: list[OutgoingMessage], pipelining: bool
) -> None:
    """A reply to the final "." longer than a reply line may be (RFC 5321 4.5.3.1.5) cannot
    be read, so the server may have the message: ambiguous however the reply is read, and
    the next message goes on over a new connection."""
    handler, told = Handler(pipelining=pipelining), _Told()
    handler.data_replies[messages[0].recipient] = "250 " + "x" * 9000
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=100)
        try:
            _later(transport, messages[0], told, 0)
        except TemporaryFailure as exc:  # read at once: `send` raises it
            told.results[0] = exc
        _later(transport, messages[1], told, 1)
        transport.close()
    failure = told.results[0]
    assert isinstance(failure, TemporaryFailure) and failure.ambiguous, failure
    assert "the server may have accepted it" in str(failure)
    assert told.results[1] is None
    assert [r.rcpt_tos[0] for r in handler.received] == [m.recipient for m in messages[:2]]
    assert transport.connections == 2


def test_a_utf8_address_the_server_cannot_take_tells_the_message_before_first(
    messages: list[OutgoingMessage],
) -> None:
    handler, told = Handler(pipelining=True), _Told()
    first, second = messages[0], messages[1]
    with smtp_server(handler, enable_SMTPUTF8=False) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        assert _later(transport, first, told, 0) is True
        with pytest.raises(NeedsSmtpUtf8):
            transport.send(
                second.envelope_from, "jörg@bücherei.example", second.data, second.key,
                then=told.then(1),
            )  # fmt: skip
        assert told.results == {0: None}
        _later(transport, messages[2], told, 2)
        transport.close()
    assert [r.rcpt_tos[0] for r in handler.received] == [first.recipient, messages[2].recipient]
    assert transport.connections == 1


def test_the_last_connection_of_a_series_tells_its_result_before_it_quits(
    messages: list[OutgoingMessage],
) -> None:
    handler, told = Handler(pipelining=True), _Told()
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5, max_per_connection=2)
        for number, message in enumerate(messages[:5]):
            _later(transport, message, told, number)
            # Every second message ends its connection: its result is told at once.
            assert sorted(told.results) == list(range(number + (number % 2)))
        transport.close()
    assert told.results == dict.fromkeys(range(5))
    assert transport.connections == 3


def test_a_then_that_raises_ends_the_session_and_the_transport_stays_usable(
    messages: list[OutgoingMessage],
) -> None:
    handler = Handler(pipelining=True)

    def broken(failure: object) -> None:
        raise RuntimeError("the caller's bug")

    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        first, second, third = messages[:3]
        transport.send(first.envelope_from, first.recipient, first.data, first.key, then=broken)
        with pytest.raises(RuntimeError):
            _send(transport, second)
        _send(transport, third)
        transport.close()
    # The second message's commands were on the wire, its body not: it never arrived.
    assert [r.rcpt_tos[0] for r in handler.received] == [first.recipient, third.recipient]
    assert transport.connections == 2
