"""The bounce mailbox: IMAP over TLS (verified certificates) or a local Maildir.

Both readers hand out raw messages and move each one that was handled into the processed
folder (`bounces.processed_folder`, default `Processed`), so nothing is handled twice and a
message that could not be handled stays where it was for the next run.
"""

from __future__ import annotations

import imaplib
import mailbox
import os
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from comms.core.errors import CommsError
from comms.core.files import make_private
from comms.core.logs import shown_url

IMAP_PORT = 993


class MailboxError(CommsError):
    """The mailbox cannot be opened or read (address, login, certificate, folder)."""


@dataclass(frozen=True)
class MailboxUrl:
    """A parsed `imaps://USER@HOST[:PORT]/FOLDER` or `maildir://PATH`."""

    scheme: str
    path: str
    user: str | None = None
    host: str | None = None
    port: int = IMAP_PORT

    def __str__(self) -> str:
        """The URL without secrets, for messages."""
        if self.scheme == "maildir":
            return f"maildir://{self.path}"
        return f"imaps://{self.user}@{self.host}:{self.port}/{self.path}"


def parse_mailbox_url(url: str, root: Path) -> MailboxUrl:
    """Parse a mailbox URL; a relative `maildir://dir` is relative to `root` (the config folder)."""
    scheme, sep, rest = url.partition("://")
    if scheme == "maildir" and sep and rest:
        path = rest if rest.startswith("/") else str((root / rest).resolve())
        return MailboxUrl("maildir", os.path.normpath(path))
    if scheme == "imaps" and sep:
        parts = urlsplit(url)
        try:
            port = parts.port or IMAP_PORT
        except ValueError as exc:
            raise MailboxError(f"mailbox {shown_url(url)!r}: {exc}") from None
        if not parts.hostname or not parts.username:
            raise MailboxError(
                f"mailbox {shown_url(url)!r}: must be imaps://USER@HOST[:PORT]/FOLDER"
            )
        if parts.password is not None:
            raise MailboxError(
                f"mailbox {shown_url(url)!r}: the password comes only from COMMS_BOUNCES_PASSWORD"
            )
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return MailboxUrl("imaps", folder, unquote(parts.username), parts.hostname, port)
    raise MailboxError(
        f"mailbox {shown_url(url)!r}: must be imaps://USER@HOST[:PORT]/FOLDER or maildir:///PATH"
    )


@dataclass(frozen=True)
class Incoming:
    """One raw message and the key the mailbox knows it by."""

    key: str
    data: bytes


class Mailbox(Protocol):
    """What `comms bounces fetch` needs of a mailbox."""

    def messages(self) -> Iterator[Incoming]:
        """Every message waiting in the folder."""
        ...

    def done(self, key: str) -> None:
        """Move a handled message to the processed folder."""
        ...

    def close(self) -> None:
        """Log out / release the mailbox."""
        ...


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapMailbox:
    """An IMAP folder over implicit TLS; certificates verified (a private CA via `ca_file`)."""

    def __init__(
        self,
        url: MailboxUrl,
        password: str | None,
        processed: str,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Connect, log in and select the folder; MailboxError on any failure."""
        if not password:
            raise MailboxError(f"mailbox {url}: COMMS_BOUNCES_PASSWORD is not set")
        assert url.host is not None and url.user is not None
        self.url = url
        self.processed = processed
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise MailboxError(f"bounces.ca_file: cannot use {ca_file}: {exc}") from None
        try:
            self.imap = imaplib.IMAP4_SSL(url.host, url.port, ssl_context=context, timeout=timeout)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"mailbox {url}: cannot connect: {exc}") from None
        try:
            self.imap.login(url.user, password)
            status, detail = self.imap.select(_quote(url.path))
            if status != "OK":
                raise MailboxError(f"mailbox {url}: cannot open the folder: {_text(detail)}")
            # Creating an existing folder answers NO; that is fine.
            self.imap.create(_quote(processed))
            self._move = "MOVE" in self.imap.capabilities
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailboxError(f"mailbox {url}: {exc}") from None

    def messages(self) -> Iterator[Incoming]:
        """Every message in the folder, oldest first, fetched without setting \\Seen."""
        uids = self._ok(self.imap.uid("SEARCH", "ALL"))[0].split()
        for uid in uids:
            data = self._ok(self.imap.uid("FETCH", uid, "(BODY.PEEK[])"))
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if isinstance(raw, bytes):
                yield Incoming(uid.decode(), raw)

    def done(self, key: str) -> None:
        """MOVE (RFC 6851) to the processed folder, else COPY, flag \\Deleted and expunge."""
        target = _quote(self.processed)
        if self._move:
            self._ok(self.imap.uid("MOVE", key, target))
            return
        self._ok(self.imap.uid("COPY", key, target))
        self._ok(self.imap.uid("STORE", key, "+FLAGS.SILENT", "(\\Deleted)"))
        self._ok(self.imap.expunge())

    def _ok(self, answer: tuple[str, list[Any]]) -> list[Any]:
        status, data = answer
        if status != "OK":
            raise MailboxError(f"mailbox {self.url}: the server answered {status}: {_text(data)}")
        return data

    def close(self) -> None:
        """Log out (errors while saying goodbye do not matter)."""
        try:
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _text(data: Sequence[object]) -> str:
    return " ".join(d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in data)


class MaildirMailbox:
    """A local Maildir; handled messages go to its Maildir++ subfolder (`.Processed/`)."""

    def __init__(self, url: MailboxUrl, processed: str) -> None:
        """Open an existing Maildir; MailboxError when there is none at the path."""
        self.url = url
        try:
            self.box = mailbox.Maildir(url.path, factory=None, create=False)
            self.box.keys()  # a missing folder shows here
            self.done_box = self.box.add_folder(processed)
        except (OSError, mailbox.Error) as exc:
            raise MailboxError(f"mailbox {url}: not a readable Maildir: {exc}") from None

    def messages(self) -> Iterator[Incoming]:
        """Every message in new/ and cur/ (keys start with the delivery time: oldest first)."""
        for key in sorted(self.box.keys()):
            try:
                yield Incoming(key, self.box.get_bytes(key))
            except KeyError:
                continue  # removed meanwhile (another reader)

    def done(self, key: str) -> None:
        """Move the message into the processed folder, marked as seen."""
        message = mailbox.MaildirMessage(self.box.get_bytes(key))
        message.set_subdir("cur")
        message.add_flag("S")
        done = self.done_box.add(message)
        # The mailbox module writes 0666 less the umask; a bounce quotes the address.
        name = f"{done}{self.done_box.colon}{message.get_info()}"
        make_private(Path(self.done_box._path, "cur", name))
        self.box.remove(key)

    def close(self) -> None:
        """Nothing to release."""
        self.box.close()


def open_mailbox(
    url: MailboxUrl,
    password: str | None,
    processed: str,
    ca_file: str | None = None,
    timeout: float = 30.0,
) -> Mailbox:
    """The reader for `url`."""
    if url.scheme == "maildir":
        return MaildirMailbox(url, processed)
    return ImapMailbox(url, password, processed, ca_file, timeout)
