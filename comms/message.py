"""RFC 5322 message assembly: multipart/alternative, list headers, tokens, optional DKIM."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipient:
    """Who one message goes to: what the message needs of a subscriber, nothing more."""

    uid: str
    email: str
    name: str | None = None
    language: str = "de"


@dataclass(frozen=True)
class OutgoingMessage:
    """A finished message: the bytes to send as they are, and its stable ids."""

    message_id: str
    envelope_from: str
    recipient: str
    data: bytes
    key: str
