"""The editor's desk in the database: approvals of an issue's digest and the proofs sent of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.db.engine import read_only
from comms.db.tables import approvals, proofs


@dataclass(frozen=True)
class Shown:
    """What the readers of one edition read of an issue: the parts a refusal's diff shows."""

    subject: str
    preheader: str
    text: str


@dataclass(frozen=True)
class Approval:
    """Someone approved one version (digest) of an issue."""

    slug: str
    digest: str
    approved_by: str
    approved_at: datetime
    #: Per edition language, what its readers read in the approved version; None for an
    #: approval recorded before approvals covered every edition (the site's edition only).
    editions: dict[str, Shown] | None = None


def _editions(raw: str | None) -> dict[str, Shown] | None:
    if raw is None:
        return None
    data: dict[str, dict[str, str]] = json.loads(raw)
    return {language: Shown(**parts) for language, parts in data.items()}


@dataclass(frozen=True)
class ProofRecord:
    """A proof of one version of an issue went to an address, by way of a destination."""

    slug: str
    digest: str
    recipient: str
    destination: str
    sent_by: str
    sent_at: datetime
    #: The language of the edition the proof showed (None: recorded before proofs had one).
    edition: str | None = None


class Desk:
    """Approvals and proofs, per issue slug; used as `Desk(store.engine)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def approve(
        self, slug: str, digest: str, by: str, at: datetime, editions: dict[str, Shown]
    ) -> Approval:
        """Record that `by` approved version `digest` of issue `slug`, which shows `editions`."""
        row = Approval(slug, digest, by, at, editions)
        shown = json.dumps({lang: asdict(parts) for lang, parts in editions.items()})
        values: dict[str, Any] = vars(row) | {"editions": shown}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(approvals).values(**values))
        return row

    def approvals(self, slug: str) -> list[Approval]:
        """Every approval of an issue, oldest first."""
        a = approvals.c
        query = (
            sa.select(a.slug, a.digest, a.approved_by, a.approved_at, a.editions)
            .where(a.slug == slug)
            .order_by(a.approved_at, a.id)
        )
        with read_only(self.engine) as conn:
            return [
                Approval(**(dict(row._mapping) | {"editions": _editions(row.editions)}))
                for row in conn.execute(query)
            ]

    def record_proof(self, proof: ProofRecord) -> None:
        """Record one proof that went out."""
        with self.engine.begin() as conn:
            conn.execute(sa.insert(proofs).values(**vars(proof)))

    def proofs(self, slug: str) -> list[ProofRecord]:
        """Every proof of an issue, oldest first."""
        p = proofs.c
        query = (
            sa.select(p.slug, p.digest, p.recipient, p.destination, p.sent_by, p.sent_at, p.edition)
            .where(p.slug == slug)
            .order_by(p.sent_at, p.id)
        )
        with read_only(self.engine) as conn:
            return [ProofRecord(**row._mapping) for row in conn.execute(query)]
