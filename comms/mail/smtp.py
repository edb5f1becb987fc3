"""SMTP submission with smtplib: verified TLS, reused connections, pipelining, classification.

Not `smtplib.sendmail`: the transaction is driven step by step so that a connection lost after
the final "." (the server may have the message: ambiguous) is told apart from one lost before
(nothing delivered: safe to resend at once), so that MAIL, RCPT and DATA can travel in one
write when the server offers PIPELINING (RFC 2920), so that a caller's `gate` can hold the
message with everything but the final "." sent (a server delivers nothing without it), and so
that the reply to a message's "." can be read after the next message's MAIL, RCPT and DATA
went out (RFC 2920 lets them follow the message content in one group): one wait for the
server per message instead of two.
"""

from __future__ import annotations

import io
import re
import select
import smtplib
import socket
import ssl
import struct
from collections.abc import Callable
from functools import cache
from typing import Literal

from comms.core.errors import (
    DeliveryError,
    MessageError,
    PolicyRejection,
    TemporaryFailure,
    Unreachable,
)
from comms.mail.replies import classify


class NeedsSmtpUtf8(MessageError):
    """The address has a non-ASCII local part and the server does not offer SMTPUTF8.

    Final for this delivery, but no bounce: no server refused the address, ours cannot carry it.
    """


class _Dropped(Exception):
    """The connection died before the message body went out: nothing was delivered."""


@cache
def _fqdn() -> str:
    # smtplib would look this up on every connection; it can be a slow DNS query.
    return socket.getfqdn()


#: The end of DATA: the moment the server takes the message (RFC 5321 §4.1.1.4).
END = b".\r\n"


#: A line that starts with '.'. Found by the regular expression engine: `bytes.replace`
#: takes several times as long over a ~50 KB message with a CRLF every 76 bytes.
_DOT_LINE = re.compile(rb"\r\n\.")


def double_dots(data: bytes) -> bytes:
    """`data` with the '.' that starts a line after a CRLF doubled (RFC 5321 §4.5.2); no copy
    when there is none. The message factory applies it to its fixed pieces once per issue."""
    return _DOT_LINE.sub(b"\r\n..", data)


def _stuff(data: bytes) -> bytes:
    """The DATA payload before its final '.': CRLF-terminated, leading dots doubled (RFC 5321
    §4.5.2). A message with no line starting with '.' is passed on as it is (no copy)."""
    stuffed = double_dots(data)
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed


class _Reader(io.RawIOBase):
    """A socket's bytes for smtplib's replies, where the kernel keeps the timeout: a receive
    that ran out of time is reported as `TimeoutError`, as a Python socket timeout is (the
    socket's own file would pass it on as the end of the connection)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        """Always: it is the reading half of the connection."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Receive into `buffer`; TimeoutError when nothing came within the timeout."""
        try:
            return self._sock.recv_into(buffer)
        except BlockingIOError:
            raise TimeoutError("timed out") from None


def _kernel_timeouts(conn: smtplib.SMTP, timeout: float) -> None:
    """Make a plain connection's socket blocking, its `timeout` kept by the kernel.

    With a Python socket timeout every send and receive first polls the socket: a second
    system call, and a second hand-over of the GIL between a connection's threads, for each;
    a message takes five of them. SO_RCVTIMEO and SO_SNDTIMEO time out the same waits
    without the poll. Not for TLS: the ssl module waits again on a blocking socket that
    timed out, so it keeps Python's timeout.
    """
    sock = conn.sock
    if sock is None or isinstance(sock, ssl.SSLSocket) or timeout <= 0:
        return
    seconds, micros = divmod(max(1, round(timeout * 1_000_000)), 1_000_000)
    value = struct.pack("@ll", seconds, micros)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)
    # smtplib reads replies through `file`; what EHLO read is consumed by now.
    old, conn.file = conn.file, io.BufferedReader(_Reader(sock))
    if old is not None:
        old.close()


def _sendall(sock: socket.socket, data: bytes) -> None:
    """`sock.sendall`, a send the kernel timed out reported as `TimeoutError`."""
    try:
        sock.sendall(data)
    except BlockingIOError:
        raise TimeoutError("timed out") from None


#: The longest reply line smtplib accepts (its `_MAXLINE`).
_MAXLINE = 8192


def _getreply(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """`conn.getreply()` for a transaction's replies: the same code, text and errors, with a
    one-line reply (nearly all of them) read in a few steps."""
    file = conn.file
    if file is None or conn.debuglevel > 0:
        return conn.getreply()
    try:
        line = file.readline(_MAXLINE + 1)
    except OSError as exc:
        conn.close()
        raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
    code = line[:3]
    if line[3:4] != b" " or len(line) > _MAXLINE or not code.isdigit():
        return _rest_of_reply(conn, line)
    return int(code), line[4:].strip(b" \t\r\n")


def _rest_of_reply(conn: smtplib.SMTP, line: bytes) -> tuple[int, bytes]:
    """smtplib's `getreply` from its first line on: a reply of several lines, a broken or a
    missing one."""
    resp = []
    while True:
        if not line:
            conn.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAXLINE:
            conn.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        resp.append(line[4:].strip(b" \t\r\n"))
        try:
            code = int(line[:3])
        except ValueError:
            code = -1
            break
        if line[3:4] != b"-":
            break
        assert conn.file is not None
        try:
            line = conn.file.readline(_MAXLINE + 1)
        except OSError as exc:
            conn.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
    return code, b"\n".join(resp)


def _send_last(sock: socket.socket, payload: bytes) -> None:
    """The payload and the final "." in one write (one system call, one segment to wake the
    server for) where the socket takes a list of buffers; in two on TLS."""
    if isinstance(sock, ssl.SSLSocket):
        _sendall(sock, payload)
        _sendall(sock, END)
        return
    try:
        sent = sock.sendmsg((payload, END))
        if sent < len(payload) + len(END):  # a send the kernel cut short
            sock.sendall((payload + END)[sent:])
    except BlockingIOError:
        raise TimeoutError("timed out") from None


#: Linux's TCP_QUICKACK (None elsewhere). Without it, a reply read after the next message's
#: commands went out waits for a delayed acknowledgement: up to 40 ms per message, measured.
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def _quickack(sock: socket.socket | None) -> None:
    """Acknowledge what arrives on `sock` at once, until the kernel's heuristics take over."""
    if _QUICKACK is not None and sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:  # not a TCP socket (a test's), or one the server closed
            pass


def _passes(gate: Callable[[], None]) -> bool:
    """Whether `gate` says it lets the message go at once (its `ready()`, where it has one):
    then there is no wait for the body's transfer to overlap."""
    ready = getattr(gate, "ready", None)
    return ready is not None and bool(ready())


class SmtpTransport:
    """SMTP submission over one reused connection (plain, STARTTLS or implicit TLS)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        mode: Literal["plain", "starttls", "tls"] = "plain",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        max_per_connection: int = 100,
        ca_file: str | None = None,
        helo_name: str | None = None,
        pipelining: bool = True,
    ) -> None:
        """Remember the settings; the connection opens on the first `send`."""
        self.host, self.port, self.mode = host, port, mode
        self.username, self.password = username, password
        self.timeout = timeout
        self.max_per_connection = max_per_connection
        self.helo_name = helo_name
        self.pipelining = pipelining
        # Always a verifying context: smtplib's default would not check the certificate
        # (docs/requirements.md S1).
        self.context = ssl.create_default_context(cafile=ca_file) if mode != "plain" else None
        self._conn: smtplib.SMTP | None = None
        self._count = 0
        #: Who is told the result of the message whose final "." went out and whose reply is
        #: not read yet (`send`'s `then`): at most one per connection.
        self._owed: Callable[[DeliveryError | None], None] | None = None
        #: Final "."s written on this connection, and the number of the one owed.
        self._dots = 0
        self._owed_at = 0
        #: After how many messages this server ended a session unasked: the reply to that
        #: message is read at once on later connections, so that the next message's commands
        #: do not reach a server that answers them and then hangs up during the body (the
        #: message would be ambiguous), but meet the closed connection (sent again at once).
        self._hangs_up_after: set[int] = set()
        #: Connections opened so far (tests and benchmarks check reuse with it).
        self.connections = 0

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _open(self) -> smtplib.SMTP:
        helo = self.helo_name or _fqdn()
        conn: smtplib.SMTP | None = None
        stage = "connect"
        try:
            if self.mode == "tls":
                conn = smtplib.SMTP_SSL(
                    self.host, self.port, local_hostname=helo, timeout=self.timeout,
                    context=self.context,
                )  # fmt: skip
            else:
                conn = smtplib.SMTP(self.host, self.port, local_hostname=helo, timeout=self.timeout)
            # The final "." goes in a write of its own: Nagle's algorithm would hold it until
            # the server acknowledged the body, which it may delay (40 ms on Linux).
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
            stage = "EHLO"
            conn.ehlo()
            if self.mode == "starttls":
                if not conn.has_extn("starttls"):
                    raise PolicyRejection(
                        f"{self._where} does not offer STARTTLS; refusing to send in clear text"
                    )
                stage = "STARTTLS"
                conn.starttls(context=self.context)
                conn.ehlo()
            if self.username:
                stage = "AUTH"
                conn.login(self.username, self.password or "")
            _kernel_timeouts(conn, self.timeout)
        except ssl.SSLCertVerificationError as exc:
            self._abandon(conn)
            raise PolicyRejection(
                f"TLS certificate of {self._where} not trusted ({exc.verify_message}); "
                "trust a private CA with smtp.ca_file"
            ) from None
        except ssl.SSLError as exc:
            self._abandon(conn)
            raise PolicyRejection(f"TLS with {self._where} failed: {exc}") from None
        except smtplib.SMTPAuthenticationError as exc:
            self._abandon(conn)
            # 535 is a PolicyRejection: a wrong password is our configuration, not the address.
            raise classify(exc.smtp_code, exc.smtp_error, "AUTH", self._where) from None
        except smtplib.SMTPNotSupportedError:
            self._abandon(conn)
            raise PolicyRejection(f"{self._where} offers no AUTH (needed for the login)") from None
        except smtplib.SMTPResponseException as exc:  # greeting, EHLO or STARTTLS refused
            self._abandon(conn)
            raise classify(exc.smtp_code, exc.smtp_error, stage, self._where) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._abandon(conn)
            raise Unreachable(f"cannot connect to {self._where}: {exc}") from None
        except DeliveryError:
            self._abandon(conn)
            raise
        self.connections += 1
        self._count = self._dots = 0
        return conn

    @staticmethod
    def _abandon(conn: smtplib.SMTP | None) -> None:
        if conn is not None:
            conn.close()

    def _drop(self) -> None:
        self._abandon(self._conn)
        self._conn = None
        owed, self._owed = self._owed, None
        if owed is not None:
            owed(self._lost_after_dot(""))

    def _lost_after_dot(self, detail: str) -> TemporaryFailure:
        """The result of a message whose final "." went out and whose reply never came:
        ambiguous, as the server may have it (`detail`: why, in parentheses, or empty)."""
        return TemporaryFailure(
            f"{self._where}: connection lost after the message was sent{detail}; "
            "the server may have accepted it",
            ambiguous=True,
        )

    def _hung_up(self) -> None:
        """Note after how many messages the server ended this session: those whose reply
        came, before the one still owed (if any)."""
        taken = self._owed_at - 1 if self._owed is not None else self._dots
        if taken > 0:
            self._hangs_up_after.add(taken)

    def _settle(self, conn: smtplib.SMTP) -> None:
        """Read the reply to the "." of the message sent before, if it is still owed, and tell
        its `then`. Raises `_Dropped` when that connection is over (lost, or a 421)."""
        owed, self._owed = self._owed, None
        if owed is None:
            return
        _quickack(conn.sock)
        try:
            code, text = _getreply(conn)
        except (OSError, smtplib.SMTPException) as exc:
            self._owed = owed  # told by `_drop`, as ambiguous
            raise _Dropped(f"no reply to the message before: {exc}") from None
        try:
            owed(None if code == 250 else classify(code, text, "end of DATA", self._where))
        except BaseException:
            self._drop()  # the next message's replies stay unread: end the session
            raise
        if code == 421:
            raise _Dropped(f"the server ends the session: {code} {text.decode(errors='replace')}")

    def _reply(self, conn: smtplib.SMTP) -> tuple[int, bytes]:
        try:
            return _getreply(conn)
        except smtplib.SMTPServerDisconnected as exc:
            raise _Dropped(str(exc)) from None

    def _command(self, conn: smtplib.SMTP, line: bytes) -> None:
        try:
            conn.send(line)
        except smtplib.SMTPServerDisconnected as exc:
            raise _Dropped(str(exc)) from None

    def _transaction(
        self,
        conn: smtplib.SMTP,
        sender: str,
        rcpt: str,
        payload: bytes,
        gate: Callable[[], None] | None,
        then: Callable[[DeliveryError | None], None] | None,
    ) -> bool:
        """MAIL, RCPT, DATA (pipelined when offered, RFC 2920), the body, then (once `gate`
        returns) the final "." and its reply: read now, or, given `then` and PIPELINING, after
        the next message's commands (True: the reply is owed)."""
        options = b""
        if not (sender + rcpt).isascii():
            # RFC 6531: a UTF-8 address needs SMTPUTF8 (and the 8-bit headers 8BITMIME).
            if not conn.has_extn("smtputf8"):
                self._settle(conn)  # the message before is told now, not at the next send
                raise NeedsSmtpUtf8(
                    f"cannot send to {rcpt}: its local part is not ASCII and {self._where} "
                    "does not offer SMTPUTF8"
                )
            options = b" SMTPUTF8" + (b" BODY=8BITMIME" if conn.has_extn("8bitmime") else b"")
        commands: list[tuple[bytes, str, tuple[int, ...]]] = [
            (b"MAIL FROM:<%s>%s\r\n" % (sender.encode(), options), "MAIL FROM", (250,)),
            (b"RCPT TO:<%s>\r\n" % rcpt.encode(), "RCPT TO", (250, 251)),
            (b"DATA\r\n", "DATA", (354,)),
        ]
        failure: DeliveryError | None = None
        data_open = False
        pipelined = self.pipelining and conn.does_esmtp and conn.has_extn("pipelining")
        if pipelined:
            self._command(conn, b"".join(line for line, _, _ in commands))
            # The reply to the message before's "." comes first; the server reads these
            # commands meanwhile.
            self._settle(conn)
            replies = [self._reply(conn) for _ in commands]
        else:
            self._settle(conn)
            replies = []
            for line, _, ok in commands:
                self._command(conn, line)
                replies.append(self._reply(conn))
                if replies[-1][0] not in ok:
                    break
        for (_, stage, ok), (code, text) in zip(commands, replies, strict=False):
            if code == 354:
                data_open = True
            elif code not in ok and failure is None:
                failure = classify(code, text, stage, self._where)
        if failure is not None:
            if data_open:  # a server that opened DATA anyway gets an empty message (RFC 2920)
                self._command(conn, b".\r\n")
                self._reply(conn)
            self._reset(conn, failure)
            raise failure
        sock = conn.sock
        assert sock is not None
        # Told before the gate: the gate waits for its outcome to be recorded.
        assert self._owed is None
        try:
            if gate is None or _passes(gate):
                # Nothing to wait for: the body and its final "." go in one write.
                if gate is not None:
                    self._hold(sock, gate)
                _send_last(sock, payload)
            else:
                _sendall(sock, payload)
                self._hold(sock, gate)
                _sendall(sock, END)
        except OSError as exc:
            raise _Dropped(f"connection lost while sending the message: {exc}") from None
        self._dots += 1
        if then is not None and pipelined and self._dots not in self._hangs_up_after:
            self._owed, self._owed_at = then, self._dots
            return True
        try:
            code, text = _getreply(conn)
        except smtplib.SMTPException as exc:  # no reply, or one too long to read
            self._drop()
            why = exc.smtp_error if isinstance(exc, smtplib.SMTPResponseException) else exc
            if isinstance(why, bytes):
                why = why.decode(errors="replace")
            raise self._lost_after_dot(f" ({why})") from None
        if code != 250:
            failure = classify(code, text, "end of DATA", self._where)
            if code == 421:
                self._drop()
            raise failure
        return False

    def _hold(self, sock: socket.socket, gate: Callable[[], None]) -> None:
        """Wait for `gate` with the message held before its final "."; what the gate raises
        ends the connection, so the server discards the message, and goes to the caller."""
        try:
            gate()
        except BaseException:
            self._drop()
            raise
        # A server that spoke meanwhile (a 421 for a timeout) or hung up has not taken the
        # message: sending the "." now would turn this into an ambiguous loss. Asked after
        # every hold, short ones too (a connection can drop at any moment); poll, not
        # select, which fails for descriptors from 1024 on.
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        if poller.poll(0):
            raise _Dropped("the server spoke or hung up while the message was held")

    def _reset(self, conn: smtplib.SMTP, failure: DeliveryError) -> None:
        """RSET after a failure keeps the connection; 421 ends it (docs/requirements.md S4)."""
        if failure.code == 421:
            self._drop()
            return
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def send(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        key: str,
        gate: Callable[[], None] | None = None,
        wire: bytes | None = None,
        then: Callable[[DeliveryError | None], None] | None = None,
    ) -> bool:
        """Send over the open connection; a connection the server closed is reopened once.

        `gate` is called with everything but the final "." on the wire: the wait for it
        overlaps the transfer (see `Transport.send`). `wire`, when given, is `data` already
        dot-stuffed (the message factory's), so the ~50 KB are not searched again here.
        With `then`, where the server offers PIPELINING, the reply to the final "." is read
        with the next message's commands on their way, or by `flush` (see `Transport.send`).
        """
        payload = _stuff(data) if wire is None else wire
        for attempt in (1, 2):
            fresh = self._conn is None
            conn = self._conn = self._conn or self._open()
            try:
                later = self._transaction(conn, envelope_from, recipient, payload, gate, then)
            except _Dropped as exc:
                if not fresh:
                    self._hung_up()
                self._drop()
                # Nothing went out: retrying once on a new connection cannot duplicate the
                # message. This is how servers that end idle or long sessions are handled.
                if fresh or attempt == 2:
                    raise TemporaryFailure(f"{self._where}: connection lost ({exc})") from None
                continue
            except smtplib.SMTPException as exc:  # e.g. a garbled reply: end this session
                self._drop()
                raise TemporaryFailure(f"{self._where}: {exc}") from None
            finally:
                self._count += 1
                if self._conn is not None and self._count >= self.max_per_connection:
                    self.close()
            return later
        raise AssertionError("unreachable: the second attempt returns or raises")

    def flush(self) -> None:
        """Read the reply owed to the last message's `then`, if any, and tell it."""
        if self._owed is None:
            return
        if self._conn is None:  # cannot happen: a dropped connection told it
            self._drop()
            return
        try:
            self._settle(self._conn)
        except _Dropped:
            self._hung_up()
            self._drop()

    def close(self) -> None:
        """Tell what is owed (`flush`), then QUIT and close the connection, if one is open."""
        self.flush()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
