"""Who receives an issue (topics and regions) and in which edition (language): query clauses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from comms.db.tables import subscribers


@dataclass(frozen=True)
class Editions:
    """The languages an issue has editions in, and the site's, which everyone else gets."""

    languages: tuple[str, ...]
    home: str


def edition_of(editions: Editions | None) -> sa.ColumnElement[Any]:
    """The edition of the subscriber row in a query: their language if it has one, else the
    site's (NULL without editions)."""
    if editions is None:
        return sa.null()
    language = subscribers.c.language
    return sa.case((language.in_(editions.languages), language), else_=sa.literal(editions.home))


def target_clause(topics: Sequence[str], regions: Sequence[str]) -> sa.ColumnElement[bool]:
    """Who an issue goes to: everyone, or those who match each dimension the issue targets.

    A subscriber matches the topics of an issue with one of them or by choosing no topic at all
    (no choice = every topic); the same for regions. An issue that targets topics and regions
    goes to those who match both.
    """
    s = subscribers.c
    parts: list[sa.ColumnElement[bool]] = []
    for column, wanted in ((s.topics, topics), (s.regions, regions)):
        if wanted:
            parts.append(sa.or_(column == "", *(column.like(f"% {w} %") for w in wanted)))
    return sa.and_(*parts) if parts else sa.true()
