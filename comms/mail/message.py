"""RFC 5322 message assembly: multipart/alternative, list headers, tokens, optional DKIM.

Everything that is the same for every recipient of an issue is built once, in
`MessageFactory.__init__`, into one bytes template; `build()` only signs two tokens and fills
a handful of slots (To, Message-ID, List-Unsubscribe, the links in both parts) with one join
of the template's fixed pieces and the values (a `bytes % tuple` would parse the whole ~50 KB
format again for every recipient). Bodies are quoted-printable (7-bit safe, lines ≤ 76);
every per-recipient link sits on lines of its own between soft line breaks, so it can be
inserted without re-encoding.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import html
import re
import secrets
import uuid
from dataclasses import replace
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from comms.content.urls import PREFERENCES_URL, UNSUBSCRIBE_URL, Urls, issue_query
from comms.core.addresses import check_address
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import ConfigError, MessageError
from comms.core.keys import Purpose, keyed_hash
from comms.core.languages import Edition
from comms.core.names import clean_name
from comms.mail.click_links import counted_links
from comms.mail.smtp import double_dots
from comms.mail.tokens import make_token
from comms.mail.verp import verp_address
from comms.publish.render import RenderedIssue

#: 7-bit-safe serialisation (docs/requirements.md E5): encoded-words in headers, CRLF line ends.
POLICY = SMTP.clone(cte_type="7bit")
#: Headers covered by DKIM; the second mention oversigns (an added copy breaks the signature).
DKIM_HEADERS = (
    "From", "Reply-To", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID", "Precedence",
    "From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post",
)  # fmt: skip
#: Encoded HTML size above which Gmail's clipping (~102 KB) gets close (docs/requirements.md E17).
CLIP_SIZE = 90_000
_PLACEHOLDER = re.compile(f"({re.escape(UNSUBSCRIBE_URL)}|{re.escape(PREFERENCES_URL)})")
#: RFC 5321 dot-atom local part @ LDH host name: the addresses that need no further check.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDR = re.compile(rf"(?=.{{1,64}}@){_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})+")
_ATOM_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")


class Recipient(NamedTuple):
    """Who one message goes to: what the message needs of a subscriber, nothing more (a named
    tuple, as the send path's other records: see comms.db.outcomes.Claimed)."""

    uid: str
    email: str
    name: str | None = None
    #: The language of the edition recorded for them ('' when unknown: the site's own).
    language: str = ""
    #: The delivery row this message is for; with it the envelope sender is a VERP address.
    delivery_id: int | None = None
    #: The subscriber's key version: the preferences link carries it (revocable links).
    link_version: int = 0
    #: The subscriber's regions and topics (` a b `, none: all): a digest issue's sections.
    regions: str = ""
    topics: str = ""


class OutgoingMessage(NamedTuple):
    """A finished message: the bytes to send as they are, and its stable ids."""

    message_id: str
    envelope_from: str
    recipient: str
    data: bytes
    key: str
    #: `data` as SMTP's DATA carries it (leading dots doubled, RFC 5321 §4.5.2), when the
    #: factory made it along with `data` from pieces stuffed once per issue; else None (and
    #: None again wherever `data` is changed afterwards).
    wire: bytes | None = None


def _qp(text: str) -> bytes:
    """Quoted-printable (RFC 2045) of UTF-8 text with CRLF line ends and lines ≤ 76."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _link(url: str) -> tuple[bytes, bytes]:
    """A link as the text part and as the HTML part carry it (quoted-printable); encoded once
    where HTML escaping leaves it as it is (a token link has no '&')."""
    text = _qp(url)
    escaped = html.escape(url)
    return text, text if escaped == url else _qp(escaped)


def _idna_url(url: str) -> str:
    """The URL with its host in IDNA (punycode) form, so headers and links stay ASCII."""
    parts = urlsplit(url)
    if parts.netloc.isascii():
        return url
    host = (parts.hostname or "").encode("idna").decode("ascii")
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def sendable_address(address: str) -> str:
    """`address` as it goes into the envelope and `To:`: the domain as A-labels (IDNA).

    A plain dot-atom address (RFC 5321: `hans-peter@…`, `o'brien@…`, 64-character local
    parts) passes as it is; anything else goes through email-validator. A non-ASCII local part
    stays UTF-8: the transport then needs SMTPUTF8 (RFC 6531). MessageError for an address
    that is not valid at all.
    """
    if len(address) <= 254 and _PLAIN_ADDR.fullmatch(address):
        return address
    try:
        checked = check_address(address)
    except ValueError as exc:
        raise MessageError(f"cannot send to {address!r}: {exc}") from None
    return f"{checked.local_part}@{checked.ascii_domain}"


def needs_smtputf8(address: str) -> bool:
    """Whether `address` (as `sendable_address` returns it) can only travel with SMTPUTF8."""
    return not address.isascii()


def _configured_address(key: str, address: str) -> str:
    """A configured address in sendable form; ConfigError naming `key` if it is not valid."""
    try:
        result = sendable_address(address)
    except MessageError as exc:
        raise ConfigError([f"'{key}': {exc}"]) from None
    if needs_smtputf8(result):
        # Every receiving server would need SMTPUTF8 for a mail from it: refused up front.
        raise ConfigError([f"'{key}': {address!r} needs SMTPUTF8; use an ASCII local part"])
    return result


def bounce_domain(config: Config, sender: str) -> str | None:
    """The VERP domain: `bounces.domain`, else the sender's; None when VERP is off."""
    settings = config.settings.bounces
    if not settings.verp:
        return None
    domain = settings.domain or sender.rpartition("@")[2]
    return domain.encode("idna").decode("ascii") if domain else None


def _fold(name: str, value: str | Address, escape: bool = True) -> bytes:
    """One header, folded and RFC 2047-encoded ('%' doubled if `escape`); CR/LF: MessageError."""
    if isinstance(value, Address):
        return _folded(name, (value.display_name, value.username, value.domain), escape)
    return _folded(name, value, escape)


# Kept: the editions of an issue share their From, Reply-To and List-Id, and the email package
# takes milliseconds to fold a name with umlauts (RFC 2047), four times each before a send.
@functools.lru_cache(maxsize=64)
def _folded(name: str, value: str | tuple[str, str, str], escape: bool) -> bytes:
    header = value if isinstance(value, str) else Address(*value)
    holder = EmailMessage(policy=POLICY)
    try:
        holder[name] = header
        folded = POLICY.fold_binary(name, holder[name])
    except (ValueError, IndexError) as exc:
        raise MessageError(f"header {name}: {exc}") from None
    # Most headers become part of the `bytes % tuple` template, where '%' must be doubled.
    return folded.replace(b"%", b"%%") if escape else folded


#: A `bytes % tuple` template's escaped '%' and its slots.
_FORMAT = re.compile(rb"(%%|%s)")


def _layout(template: bytes) -> list[bytes | None]:
    """`template` (a `bytes % tuple` format of `%s` slots) as its fixed pieces, '%' unescaped,
    with a None between each two: the slots, at the odd indexes."""
    layout: list[bytes | None] = []
    piece: list[bytes] = []
    for token in _FORMAT.split(template):
        if token == b"%s":
            layout += [b"".join(piece), None]
            piece = []
        else:
            piece.append(b"%" if token == b"%%" else token)
    layout.append(b"".join(piece))
    return layout


def _wire_layout(layout: list[bytes | None]) -> list[bytes | None] | None:
    """`layout` with its fixed pieces dot-stuffed for SMTP, or None when that cannot be told
    apart from stuffing the joined message (a piece too short to see across its edges)."""
    pieces = [piece for piece in layout if piece is not None]
    if pieces[0].startswith(b".") or not pieces[-1].endswith(b"\r\n"):
        return None
    if any(len(piece) < 2 for piece in pieces):
        return None
    return [None if piece is None else double_dots(piece) for piece in layout]


def _plain_value(value: bytes) -> bool:
    """Whether a slot's value starts no line with '.', alone or across the edges of the fixed
    pieces around it (which are at least two bytes): then stuffing goes piece by piece."""
    return (
        bool(value)
        and value[:1] not in (b".", b"\n")
        and not value.endswith(b"\r")
        and not value.endswith(b"\r\n")
        and b"\n." not in value
    )


def _dkim_key(config: Config) -> bytes | None:
    """The DKIM private key (PEM) when DKIM is configured; ConfigError naming the key if not."""
    dkim = config.settings.dkim
    if not dkim.key_file:
        return None
    path = (config.root / Path(dkim.key_file).expanduser()).resolve()
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"'dkim.key_file': cannot read {path}: {exc.strerror}"]) from None
    if b"PRIVATE KEY" not in key:
        raise ConfigError([f"'dkim.key_file': {path} holds no PEM private key"])
    return key


class MessageFactory:
    """Builds every recipient's message of one issue from bytes prepared once per issue."""

    def __init__(
        self,
        config: Config,
        rendered: RenderedIssue,
        secret: str,
        date: datetime | None = None,
    ) -> None:
        """Precompute headers and encoded bodies; `date` (aware) defaults to now."""
        if not secret:
            raise ConfigError(["COMMS_SECRET_KEY is not set: it signs the unsubscribe links"])
        settings = config.settings
        if settings.mail.count_clicks:  # off: the issue's bytes stay exactly as rendered
            page = counted_links(config, secret, rendered.slug, rendered.html)
            rendered = replace(rendered, html=page)
        self.config = config
        self.rendered = rendered
        self.secret = secret
        self.slug = rendered.slug
        self.host = config.host.encode("idna").decode("ascii")
        sender = settings.sender
        self.envelope_from = _configured_address("sender.address", sender.address)
        self.bounce_domain = bounce_domain(config, self.envelope_from)
        self._unsubscribe = _idna_url(Urls(config).unsubscribe())
        self._issue_query = issue_query(self.slug)
        self._preferences = _idna_url(Urls(config).preferences())
        mailto = settings.mail.unsubscribe_mailto
        self._mailto = (
            f",\r\n <mailto:{_configured_address('mail.unsubscribe_mailto', mailto)}"
            "?subject=Abmelden>".encode()
            if mailto
            else b""
        )
        self._dkim_key = _dkim_key(config)
        when = date if date is not None else now_utc().astimezone(config.tz)
        if when.tzinfo is None:
            raise MessageError("the Date of a message must be timezone-aware")
        for part, text in (("text", rendered.text), ("HTML", rendered.html)):
            # Never send without a way out (docs/requirements.md E8; § 7 UWG).
            if UNSUBSCRIBE_URL not in text:
                raise MessageError(f"the {part} part of the issue has no {UNSUBSCRIBE_URL} link")
        template = self._template(config, rendered, format_datetime(when))
        #: The template's fixed pieces with a None at each slot, filled and joined by `build()`.
        self._layout = _layout(template)
        #: The same, its fixed pieces stuffed for SMTP once here rather than for every message.
        self._wire = _wire_layout(self._layout)
        html_size = len(_qp(rendered.html))
        #: Problems worth telling the editor about; the CLI prints them.
        self.warnings: list[str] = []
        if html_size > CLIP_SIZE:
            self.warnings.append(
                f"the HTML part is {html_size:,} bytes; Gmail clips mails over ~102 KB and may "
                "hide the footer with the unsubscribe link (keep it under "
                f"{CLIP_SIZE:,})"
            )
        if self._dkim_key is not None:
            self._sign(b"From: a@b\r\n\r\nkey check\r\n")  # a bad key stops here, not mid-run

    def _template(self, config: Config, rendered: RenderedIssue, date: str) -> bytes:
        """The whole message as a `bytes % tuple` format; slots in `build()` order."""
        settings = config.settings
        sender = settings.sender
        local, _, domain = self.envelope_from.rpartition("@")
        head = [
            _fold("Date", date),
            _fold("From", Address(sender.name, local, domain)),
            b"To: %s\r\n",
            _fold("Subject", rendered.subject),
            b"Message-ID: %s\r\n",
        ]
        if sender.reply_to:
            reply_to = _configured_address("sender.reply_to", sender.reply_to)
            rlocal, _, rdomain = reply_to.rpartition("@")
            head.append(_fold("Reply-To", Address(sender.name, rlocal, rdomain)))
        head.append(_fold("List-Id", f"{sender.name} <{sender.list_id}>"))
        head.append(b"List-Unsubscribe: %s\r\n")
        head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        if settings.mail.feedback_id:
            head.append(_fold("Feedback-ID", settings.mail.feedback_id))
        if settings.mail.precedence != "none":
            head.append(f"Precedence: {settings.mail.precedence}\r\n".encode())
        boundary = "=_" + hashlib.blake2b(rendered.slug.encode(), digest_size=12).hexdigest()
        # The edition's language (RFC 3282), for screen readers and translation prompts.
        head.append(f"Content-Language: {rendered.language}\r\n".encode("ascii"))
        head.append(b"MIME-Version: 1.0\r\n")
        head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode())
        static = [*head, b"\r\n"]
        self._slots: list[tuple[str, int]] = []  # (placeholder, 0 = text part, 1 = HTML part)
        for part, (subtype, text) in enumerate((("plain", rendered.text), ("html", rendered.html))):
            static.append(
                f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            )
            for piece in _PLACEHOLDER.split(text):
                if piece in (UNSUBSCRIBE_URL, PREFERENCES_URL):
                    # Soft breaks around the slot: the link starts and ends its own lines.
                    static.append(b"=\r\n%s=\r\n")
                    self._slots.append((piece, part))
                elif piece:
                    static.append(_qp(piece).replace(b"%", b"%%"))
            static.append(b"\r\n")
        static.append(f"--{boundary}--\r\n".encode())
        return b"".join(static)

    def message_id(self, uid: str) -> str:
        """The Message-ID of (this issue, uid): the same on every rebuild and retry.

        Keyed, so that no one can compute it from the uid in a link: a bounce report without
        VERP is matched by it (`comms.bounces.policy`).
        """
        digest = keyed_hash(self.secret, Purpose.MESSAGE_ID, f"{self.slug}/{uid}")[:24]
        return f"<{self.slug}.{digest}@{self.host}>"

    def _to_header(self, recipient: Recipient, address: str) -> bytes:
        """The `To:` value; a non-ASCII local part goes in as UTF-8 (RFC 6532, with SMTPUTF8)."""
        if address.isascii():
            return self._to(recipient, address)
        # The name is written around a stand-in address, which the real one then replaces.
        stand_in = "x@stand-in.invalid"
        return self._to(recipient, stand_in).replace(stand_in.encode(), address.encode())

    def _to(self, recipient: Recipient, address: str) -> bytes:
        name = clean_name(recipient.name)
        if not name:
            return address.encode("ascii")
        if _ATOM_NAME.fullmatch(name):
            # What formataddr writes for a name of atoms and spaces, without its checks.
            value = f"{name} <{address}>"
        else:  # quoted or RFC 2047 base64 words, as the email package writes them
            value = formataddr((name, address), charset="utf-8")
        if len(value) <= 74 and "=?" not in name:
            return value.encode("ascii")
        # Long names, and names that look like encoded-words (so they show as typed): words of
        # at most 75 characters on lines of their own, then the address on its own line. (The
        # email package's folding of long quoted or atom names can break the header: a second
        # "To:" or an unterminated group.)
        words = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
        return f"{words}\r\n <{address}>".encode("ascii")

    def _sign(self, data: bytes) -> bytes:
        import dkim  # imported here: only DKIM users pay for loading it

        dkim_cfg = self.config.settings.dkim
        assert self._dkim_key is not None and dkim_cfg.selector and dkim_cfg.domain
        try:
            signature: bytes = dkim.sign(
                data,
                dkim_cfg.selector.encode("ascii"),
                dkim_cfg.domain.encode("idna"),
                self._dkim_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h.encode("ascii") for h in DKIM_HEADERS],
                linesep=b"\r\n",
            )
        except dkim.DKIMException as exc:
            raise ConfigError([f"'dkim.key_file': cannot sign with this key: {exc}"]) from None
        return signature + data

    def _envelope(self, recipient: Recipient) -> str:
        """The VERP address of the recipient's delivery, else the sender's address."""
        if self.bounce_domain is None or recipient.delivery_id is None:
            return self.envelope_from
        local_part = self.config.settings.bounces.local_part
        return verp_address(self.secret, recipient.delivery_id, local_part, self.bounce_domain)

    def build(self, recipient: Recipient, message_id: str | None = None) -> OutgoingMessage:
        """The finished bytes for one recipient (MessageError for an unusable address)."""
        address = sendable_address(recipient.email)
        unsubscribe = (
            self._unsubscribe
            + make_token(self.secret, "unsubscribe", recipient.uid)
            + self._issue_query
        )
        preferences = self._preferences + make_token(
            self.secret, "preferences", recipient.uid, recipient.link_version
        )
        links = {UNSUBSCRIBE_URL: _link(unsubscribe), PREFERENCES_URL: _link(preferences)}
        message_id = message_id or self.message_id(recipient.uid)
        values = [
            self._to_header(recipient, address),
            message_id.encode("ascii"),
            b"<" + unsubscribe.encode("ascii") + b">" + self._mailto,
        ]
        values.extend(links[slot][part] for slot, part in self._slots)
        layout = self._layout.copy()
        layout[1::2] = values
        data = b"".join(layout)  # type: ignore[arg-type]  # every None is filled now
        wire = None
        if self._dkim_key is not None:
            data = self._sign(data)
        elif self._wire is not None and all(map(_plain_value, values)):
            layout = self._wire.copy()
            layout[1::2] = values
            wire = b"".join(layout)  # type: ignore[arg-type]
        return OutgoingMessage(
            message_id=message_id,
            envelope_from=self._envelope(recipient),
            recipient=address,
            data=data,
            key=f"{self.slug}/{recipient.uid}",
            wire=wire,
        )

    def build_proof(self, email: str, name: str | None = None) -> OutgoingMessage:
        """A proof for an address outside the list: its links name no subscriber.

        The uid is derived from the address (`proof-…`), so the unsubscribe and preferences
        links carry valid tokens that match nobody: following them changes nothing. Each proof
        gets a fresh Message-ID, because mailbox providers drop a second mail with a known one.
        """
        digest = hashlib.blake2b(email.strip().lower().encode(), digest_size=8).hexdigest()
        nonce = uuid.UUID(bytes=secrets.token_bytes(16)).hex[:16]
        message_id = f"<{self.slug}.proof.{nonce}@{self.host}>"
        recipient = Recipient(uid=f"proof-{digest}", email=email, name=name)
        return self.build(recipient, message_id=message_id)


def is_unkeyed_message_id(message_id: str, slug: str, uid: str) -> bool:
    """Whether `message_id` has the form Message-IDs had before they were keyed: an unkeyed
    hash of slug and uid, which anyone holding a link (it starts with the uid) can compute."""
    digest = hashlib.blake2b(f"{slug}/{uid}".encode(), digest_size=12).hexdigest()
    return message_id.startswith(f"<{slug}.{digest}@")


def new_message_id(config: Config) -> str:
    """A fresh random Message-ID under the site's host, for a transactional mail."""
    return f"<confirm.{secrets.token_hex(12)}@{config.host.encode('idna').decode('ascii')}>"


def build_transactional(
    config: Config,
    to: str,
    subject: str,
    html_body: str,
    text_body: str,
    edition: Edition,
    date: datetime | None = None,
    message_id: str | None = None,
) -> OutgoingMessage:
    """A one-off transactional mail (the double opt-in) from `subscribe.confirm_address`,
    written in `edition`.

    A separate stream from the newsletter (docs/requirements.md E20): its own From, no list
    headers, no tracking; Date is aware, the Message-ID random under the site's host.
    """
    confirm_address = config.settings.subscribe.confirm_address
    sender = _configured_address("subscribe.confirm_address", confirm_address)
    recipient = sendable_address(to)
    when = date if date is not None else now_utc().astimezone(config.tz)
    message_id = message_id or new_message_id(config)
    # A UTF-8 local part is written as it is (RFC 6532); the transport then needs SMTPUTF8.
    policy = POLICY.clone(utf8=True) if needs_smtputf8(recipient) else POLICY
    msg = EmailMessage(policy=policy)
    local, _, domain = sender.rpartition("@")
    try:
        msg["Date"] = format_datetime(when)
        msg["From"] = Address(config.settings.sender.name, local, domain)
        msg["To"] = recipient
        msg["Subject"] = subject
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    except ValueError as exc:
        raise MessageError(f"confirmation mail: {exc}") from None
    msg.set_content(text_body, cte="quoted-printable")
    msg.add_alternative(html_body, subtype="html", cte="quoted-printable")
    # Named here: the email package draws one from the module-level random generator, shared
    # state a sign-up's background thread should not move.
    msg.set_boundary("=_" + secrets.token_hex(12))
    # After the body: setting the content drops Content-* headers.
    msg["Content-Language"] = edition.language
    return OutgoingMessage(
        message_id=message_id,
        envelope_from=sender,
        recipient=recipient,
        data=msg.as_bytes(policy=policy),
        key=message_id.strip("<>"),
    )
