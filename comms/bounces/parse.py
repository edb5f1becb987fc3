"""What came back: RFC 3464 DSNs, RFC 5965 ARF complaints, other bounces and auto-replies.

Structured reports are read with the standard library's `email` parser: the per-recipient
fields of `message/delivery-status` (Final-Recipient, Original-Recipient, Action, Status,
Diagnostic-Code) and the `message/feedback-report` of an ARF report. Bounces in the older
free-text formats (Exim, GMX/web.de, Exchange without a DSN part …) are recognised by
flufl.bounce's detectors (Mailman's); their status code, when the text quotes one, is taken from
the lines about each recipient. Auto-replies (RFC 3834, out-of-office) are not bounces.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum

from flufl.bounce import all_failures

from comms.mail.status_codes import ENHANCED, StatusClass, status_class


class Kind(StrEnum):
    """What a report means for the person it names."""

    HARD = "hard"  # the address is gone: suppress at once
    SOFT = "soft"  # the relay gave up for now (mailbox full, 4.x.x): counted
    DELAYED = "delayed"  # a warning, delivery goes on: nothing to do
    COMPLAINT = "complaint"  # "this is spam" (ARF)
    AUTOREPLY = "autoreply"  # out-of-office and other automatic answers
    OTHER = "other"  # not a report about our mail (a reply, a success DSN, DMARC reports)


#: Severity order when one report names several outcomes.
_SEVERITY = {Kind.COMPLAINT: 5, Kind.HARD: 4, Kind.SOFT: 3, Kind.DELAYED: 2, Kind.AUTOREPLY: 1}
#: Headers that carry the envelope the report was delivered to (our VERP address).
_ENVELOPE_HEADERS = (
    "To",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Delivered-To",
)
#: The basic reply code a diagnostic quotes: at its start, or right before an enhanced code.
_REPLY_CODE = re.compile(r"^\s*([245]\d\d)\b|\b([245]\d\d)[ -](?=[245]\.\d{1,3}\.\d{1,3}\b)")
_AUTOREPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|automatische antwort|abwesenheit|"
    r"out of (the )?office|away from|vacation|urlaub|r[ée]ponse automatique|auto:)",
    re.IGNORECASE,
)
#: ARF feedback types that are a person's complaint; auth-failure (DMARC) reports are not.
_COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other")
_MESSAGE_ID = re.compile(r"^Message-I[Dd]:\s*(<[^>\s]+>)", re.MULTILINE)


@dataclass(frozen=True)
class Failure:
    """One recipient's outcome as the report states it."""

    kind: Kind
    recipient: str | None = None
    status: str | None = None
    diagnostic: str | None = None
    #: A DSN's Final-Recipient where it also names the Original-Recipient (`recipient`).
    final_recipient: str | None = None

    def addresses(self) -> tuple[str, ...]:
        """Every address this outcome names as the original message's recipient."""
        return tuple(a for a in (self.recipient, self.final_recipient) if a)


@dataclass(frozen=True)
class Report:
    """A message from the bounce mailbox, classified."""

    kind: Kind
    failures: tuple[Failure, ...] = ()
    #: Addresses the report was sent to or names as the original envelope (VERP candidates).
    envelope: tuple[str, ...] = ()
    #: Message-ID of the report itself and of the original message it is about.
    message_id: str | None = None
    original_message_id: str | None = None

    def worst(self, among: Iterable[Failure] | None = None) -> Failure | None:
        """The most severe outcome the report names (a complaint before a hard bounce …), or
        the most severe of `among`."""
        failures = list(self.failures if among is None else among)
        if not failures:
            return None
        return max(failures, key=lambda f: _SEVERITY.get(f.kind, 0))


def classify(status: str | None, action: str | None, diagnostic: str | None) -> Kind:
    """The kind of one failed recipient from its DSN Action, Status and diagnostic.

    The class of the code comes from the same table as a refusal at RCPT time
    (`comms.mail.status_codes`): hard only when it says the address is gone (x.1.x, x.2.x
    but a full mailbox, 5.4.4 no such domain; a bare 5.0.0 by the reply code the diagnostic
    quotes). Everything else that failed — 4.x.x after the relay gave up, a full mailbox, a
    refusal of our message or server (x.3, x.5, x.6, x.7) — is soft: counted, suppressed only
    when it repeats (a blocklisted relay must not unsubscribe the whole list at once).
    """
    action = (action or "failed").strip().lower()
    if action == "delayed":
        return Kind.DELAYED
    if action in ("delivered", "relayed", "expanded"):
        return Kind.OTHER
    found = ENHANCED.search(status or "")
    if found is not None and found.group(1) == "2":
        return Kind.OTHER
    text = diagnostic or ""
    reply = _REPLY_CODE.search(text)
    code = int(reply.group(1) or reply.group(2)) if reply else None
    cls = status_class(code, found.group(0) if found else None, text)
    return Kind.HARD if cls is StatusClass.HARD else Kind.SOFT


def read_report(data: bytes) -> Report:
    """Parse and classify one raw message."""
    msg = email.message_from_bytes(data, policy=policy.compat32)
    envelope = _envelope(msg)
    message_id = _header(msg, "Message-ID")
    arf = _feedback_report(msg)
    if arf is not None:
        kind = Kind.COMPLAINT if arf.lower() in _COMPLAINT_TYPES else Kind.OTHER
        recipients: list[str | None] = [*_field_addresses(msg, "Original-Rcpt-To")] or [None]
        return Report(
            kind=kind,
            failures=tuple(Failure(kind, r, None, f"feedback type {arf}") for r in recipients),
            envelope=envelope,
            message_id=message_id,
            original_message_id=_original_message_id(msg),
        )
    failures = _dsn_failures(msg) or _free_text_failures(msg)
    if failures:
        relevant = [f for f in failures if f.kind is not Kind.OTHER]
        worst = max(relevant, key=lambda f: _SEVERITY[f.kind]).kind if relevant else Kind.OTHER
        return Report(
            kind=worst,
            failures=tuple(failures),
            envelope=envelope,
            message_id=message_id,
            original_message_id=_original_message_id(msg),
        )
    kind = Kind.AUTOREPLY if _is_autoreply(msg) else Kind.OTHER
    return Report(kind=kind, envelope=envelope, message_id=message_id)


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return " ".join(str(value).split()) or None if value is not None else None


def _envelope(msg: Message) -> tuple[str, ...]:
    values = [str(v) for name in _ENVELOPE_HEADERS for v in msg.get_all(name, [])]
    found = [addr for _, addr in getaddresses(values) if "@" in addr]
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in _blocks(part):
                found.extend(_field_addresses(block, "X-Postfix-Sender"))
        elif ctype in ("message/rfc822", "text/rfc822-headers"):
            original = _original(part)
            if original is not None:
                found.extend(a for _, a in getaddresses(original.get_all("Return-Path", [])))
    unique: dict[str, None] = {}
    for address in found:
        unique.setdefault(address.strip().lower(), None)
    return tuple(a for a in unique if a)


def _field_addresses(msg: Message, name: str) -> list[str]:
    """Addresses from DSN-style fields (`rfc822; a@b`), anywhere in the message."""
    out: list[str] = []
    for part in msg.walk():
        for value in part.get_all(name, []):
            address = str(value).partition(";")[2] if ";" in str(value) else str(value)
            address = address.strip().strip("<>").strip()
            if "@" in address:
                out.append(address)
    return out


def _blocks(part: Message) -> Iterator[Message]:
    """The field blocks of a message/delivery-status part (per message, then per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        yield from (block for block in payload if isinstance(block, Message))
    elif isinstance(payload, str):
        for chunk in re.split(r"\r?\n\s*\r?\n", payload.strip()):
            yield email.message_from_string(chunk.strip() + "\n", policy=policy.compat32)


def _dsn_failures(msg: Message) -> list[Failure]:
    failures: list[Failure] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _blocks(part):
            final = block.get("Final-Recipient")
            if final is None:
                continue  # the per-message block
            original = block.get("Original-Recipient")
            address = str(original if original is not None else final).partition(";")[2]
            other = str(final).partition(";")[2] if original is not None else ""
            status = _header(block, "Status")
            diagnostic = _header(block, "Diagnostic-Code")
            if diagnostic and ";" in diagnostic:
                diagnostic = diagnostic.partition(";")[2].strip()
            kind = classify(status, _header(block, "Action"), diagnostic)
            found = ENHANCED.search(status or "")
            failures.append(
                Failure(
                    kind,
                    address.strip().strip("<>").strip() or None,
                    found.group(0) if found else None,
                    diagnostic,
                    other.strip().strip("<>").strip() or None,
                )
            )
    return failures


def _text(msg: Message) -> str:
    """Every text/plain part (the whole body of a non-MIME message), decoded."""
    texts: list[str] = []
    for part in msg.walk():
        if part.get_content_type() != "text/plain":
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                texts.append(raw.decode(charset, errors="replace"))
            except LookupError:
                texts.append(raw.decode("utf-8", errors="replace"))
    return "\n".join(texts)


def _free_text_failures(msg: Message) -> list[Failure]:
    """Bounces without a DSN part: flufl.bounce finds the addresses, the text the codes."""
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return []
    text = _text(msg)
    failures: list[Failure] = []
    named = [(a.decode(errors="replace"), False) for a in sorted(permanent)]
    named += [(a.decode(errors="replace"), True) for a in sorted(temporary)]
    for address, delayed in named:
        others = [a for a, _ in named if a != address]
        diagnostic = _around(text, address, others)
        found = ENHANCED.search(diagnostic or "")
        status = found.group(0) if found else None
        kind = Kind.DELAYED if delayed else classify(status, "failed", diagnostic)
        failures.append(Failure(kind, address, status, diagnostic))
    return failures


def _around(text: str, address: str, others: list[str]) -> str | None:
    """The lines about one address: from its first mention up to the quoted original, the
    next recipient or 10 lines (Gmail puts the server's reply a few paragraphs below)."""
    at = text.lower().find(address.lower())
    if at < 0:
        return None
    lines: list[str] = []
    for line in text[at:].splitlines():
        line = line.strip()
        if lines and (line.startswith(("---", "===")) or any(o in line for o in others)):
            break
        if line:
            lines.append(line)
        if len(lines) >= 10:
            break
    joined = " ".join(lines)
    return joined[:500] or None


def _original(part: Message) -> Message | None:
    """The headers of the returned original message in a message/rfc822 or headers part."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str) and payload.strip():
        return email.message_from_string(payload.lstrip(), policy=policy.compat32)
    return None


def _original_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            original = _original(part)
            if original is not None and original.get("Message-ID"):
                return _header(original, "Message-ID")
    # Free-text bounces quote the original headers in the body.
    found = _MESSAGE_ID.findall(_text(msg))
    own = _header(msg, "Message-ID")
    return next((mid for mid in found if mid != own), None)


def _feedback_report(msg: Message) -> str | None:
    """The Feedback-Type of an ARF report (RFC 5965), None when the message is not one."""
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        for block in _blocks(part):
            kind = block.get("Feedback-Type")
            if kind:
                return str(kind).strip()
        return "abuse"  # a report without the field: the most common kind
    return None


def _is_autoreply(msg: Message) -> bool:
    """An automatic answer (RFC 3834 Auto-Submitted, vendor headers, typical subjects)."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_AUTOREPLY_SUBJECT.match(str(msg.get("Subject", "")).strip()))
