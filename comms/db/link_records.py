"""Revocable and single-use links: the per-person key version and the mailed link records."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.engine import read_only
from comms.db.tables import link_requests, subscribers


def nonce_hash(nonce: str) -> str:
    """What the database keeps of a link's nonce."""
    return hashlib.sha256(nonce.encode()).hexdigest()


class LinkRecords:
    """The link state of subscribers, on the store's engine (`store.links`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(self, sid: int, purpose: str, nonce: str, at: datetime, expires_at: datetime) -> None:
        """Record a single-use link just mailed to the person."""
        row = {
            "subscriber_id": sid,
            "purpose": purpose,
            "nonce_hash": nonce_hash(nonce),
            "created_at": at,
            "expires_at": expires_at,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(link_requests).values(row))

    def opened_since(self, sid: int, since: datetime) -> int:
        """How many links were mailed to the person since `since` (the mail limit)."""
        r = link_requests.c
        query = sa.select(sa.func.count()).where(r.subscriber_id == sid, r.created_at >= since)
        with read_only(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def is_open(self, sid: int, purpose: str, nonce: str, at: datetime) -> bool:
        """Whether this link is still unused and unexpired (for a page that only shows it)."""
        r = link_requests.c
        query = sa.select(r.id).where(
            r.subscriber_id == sid,
            r.purpose == purpose,
            r.nonce_hash == nonce_hash(nonce),
            r.used_at.is_(None),
            r.expires_at > at,
        )
        with read_only(self.engine) as conn:
            return conn.execute(query).first() is not None

    def use(self, sid: int, purpose: str, nonce: str, at: datetime) -> bool:
        """Mark the link used; False when it was used before, expired or revoked.

        One UPDATE with the conditions in its WHERE: of two requests racing with the same
        link, exactly one changes the row.
        """
        r = link_requests.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(link_requests)
                .where(
                    r.subscriber_id == sid,
                    r.purpose == purpose,
                    r.nonce_hash == nonce_hash(nonce),
                    r.used_at.is_(None),
                    r.expires_at > at,
                )
                .values(used_at=at)
            )
        return result.rowcount == 1

    def revoke(self, sid: int, at: datetime) -> int:
        """Log out all links: raise the key version, close the open mailed links; the new
        version is returned. The one-click unsubscribe keeps working (it carries none)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(subscribers)
                .where(subscribers.c.id == sid)
                .values(link_version=subscribers.c.link_version + 1, updated_at=at)
            )
            conn.execute(
                sa.update(link_requests)
                .where(link_requests.c.subscriber_id == sid, link_requests.c.used_at.is_(None))
                .values(used_at=at)
            )
            return int(
                conn.execute(
                    sa.select(subscribers.c.link_version).where(subscribers.c.id == sid)
                ).scalar_one()
            )

    def forget(self, before: datetime) -> int:
        """Delete link records that expired before `before` (housekeeping)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(link_requests).where(link_requests.c.expires_at < before)
            )
        return int(result.rowcount or 0)
