"""What the subscriber store takes and hands out: addresses, people, consent events."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from comms.core.addresses import check_address, fold_address
from comms.core.errors import CommsError
from comms.db.status import SubscriberStatus


class SubscriberError(CommsError):
    """A subscriber operation is not possible (unknown, already there, suppressed)."""


def normalise_address(text: str) -> str:
    """The identity of an address: NFKC-folded, trimmed, IDNA-checked, the whole address
    lower-cased.

    Local parts are case-sensitive by RFC 5321, but no mailbox provider treats them so; folding
    them keeps `Max@…` and `max@…` from becoming two subscribers who get every issue twice, and
    `ｍａｘ@…` (full-width) from being a third one that no cap or suppression entry knows.
    """
    text = fold_address(text.strip())
    normalized = check_address(text).normalized
    return unicodedata.normalize("NFC", normalized).lower()


def slugs(value: str) -> tuple[str, ...]:
    """The slugs of a stored space-padded list."""
    return tuple(value.split())


def padded(values: Iterable[str]) -> str:
    """A slug list as stored: sorted, space-padded (" sprache arbeit ") for LIKE matching."""
    items = sorted(set(values))
    return f" {' '.join(items)} " if items else ""


@dataclass(frozen=True)
class Consent:
    """One consent ledger event as the caller sees it (docs/requirements.md L3)."""

    action: str
    source: str
    ip: str | None = None
    user_agent: str | None = None
    consent_version: str | None = None
    channel: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class NewSubscriber:
    """The fields of a person to add; `email` already normalised."""

    email: str
    name: str | None = None
    language: str = "de"
    topics: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    def row(self, key: str, at: datetime) -> dict[str, Any]:
        """The `subscribers` row of this person, pending; `key` is the suppression key."""
        return {
            "uid": secrets.token_urlsafe(12),
            "email": self.email,
            "suppression_key": key,
            "name": self.name,
            "language": self.language,
            "topics": padded(self.topics),
            "regions": padded(self.regions),
            "status": SubscriberStatus.PENDING,
            "created_at": at,
            "updated_at": at,
        }


@dataclass(frozen=True)
class Subscriber:
    """One stored subscriber."""

    id: int
    uid: str
    email: str
    name: str | None
    language: str
    topics: tuple[str, ...]
    regions: tuple[str, ...]
    status: SubscriberStatus
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    #: Raised by "log out all links" (comms.db.link_records); revocable links carry it.
    link_version: int = 0

    @classmethod
    def from_row(cls, row: Any) -> Subscriber:
        """Build from a `subscribers` row."""
        m = row._mapping
        return cls(
            **{k: m[k] for k in ("id", "uid", "email", "name", "language")},
            status=SubscriberStatus(m["status"]),
            topics=slugs(m["topics"]),
            regions=slugs(m["regions"]),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            confirmed_at=m["confirmed_at"],
            unsubscribed_at=m["unsubscribed_at"],
            link_version=m["link_version"],
        )


@dataclass
class ImportResult:
    """What an import did."""

    added: int = 0
    known: int = 0
    suppressed: int = 0
