"""Who receives an issue (topics and regions) and in which edition (language): query clauses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from comms.core.languages import Editions
from comms.db.tables import subscribers


def edition_column(editions: Editions | None) -> sa.ColumnElement[Any]:
    """The language of the edition the subscriber row in a query gets (NULL without editions).

    The query does not decide: it is `Editions.for_reader` tabulated, each offered language
    mapped to its answer and every other language (or none) to the answer for an unknown one.
    """
    if editions is None:
        return sa.null()
    answers = {language: editions.for_reader(language).language for language in editions.languages}
    otherwise = editions.for_reader(None).language
    return sa.case(answers, value=subscribers.c.language, else_=sa.literal(otherwise))


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
