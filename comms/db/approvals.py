"""The editor's desk in the database: approvals of an issue's digest and the proofs sent of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.engine import read_only
from comms.db.tables import approvals, campaigns, proofs


@dataclass(frozen=True)
class Approval:
    """Someone approved one version (digest) of an issue."""

    slug: str
    digest: str
    approved_by: str
    approved_at: datetime


@dataclass(frozen=True)
class ProofRecord:
    """A proof of one version of an issue went to an address, by way of a destination."""

    slug: str
    digest: str
    recipient: str
    destination: str
    sent_by: str
    sent_at: datetime


class Desk:
    """Approvals and proofs, per issue slug; used as `Desk(store.engine)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def approve(self, slug: str, digest: str, by: str, at: datetime) -> Approval:
        """Record that `by` approved version `digest` of issue `slug`."""
        row = Approval(slug, digest, by, at)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(approvals).values(**vars(row)))
        return row

    def approvals(self, slug: str) -> list[Approval]:
        """Every approval of an issue, oldest first."""
        a = approvals.c
        query = (
            sa.select(a.slug, a.digest, a.approved_by, a.approved_at)
            .where(a.slug == slug)
            .order_by(a.approved_at, a.id)
        )
        with read_only(self.engine) as conn:
            return [Approval(**row._mapping) for row in conn.execute(query)]

    def record_proof(self, proof: ProofRecord) -> None:
        """Record one proof that went out."""
        with self.engine.begin() as conn:
            conn.execute(sa.insert(proofs).values(**vars(proof)))

    def proofs(self, slug: str) -> list[ProofRecord]:
        """Every proof of an issue, oldest first."""
        p = proofs.c
        query = (
            sa.select(p.slug, p.digest, p.recipient, p.destination, p.sent_by, p.sent_at)
            .where(p.slug == slug)
            .order_by(p.sent_at, p.id)
        )
        with read_only(self.engine) as conn:
            return [ProofRecord(**row._mapping) for row in conn.execute(query)]

    def started(self) -> frozenset[str]:
        """Slugs of the issues whose campaign has started: their mails are (being) sent."""
        with read_only(self.engine) as conn:
            return frozenset(conn.execute(sa.select(campaigns.c.slug)).scalars())
