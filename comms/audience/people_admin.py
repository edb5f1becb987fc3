"""The subscribers as an administrator sees them on the desk, through the services the CLI uses:
search by part of the address, one person's report and consent ledger (`comms subscribers
show`), the export (`comms subscribers export`) and erasure (`comms subscribers remove`)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from comms.audience.data_requests import erase_person
from comms.audience.subscriber_csv import write_export
from comms.core.config import Config
from comms.db.people import Subscriber
from comms.db.store import Store

#: People per page of search results.
PAGE_SIZE = 25
#: What an export may be written as (the CLI's `--format`).
EXPORT_FORMATS = ("csv", "json")


@dataclass(frozen=True)
class Found:
    """One page of a search."""

    people: list[Subscriber]
    total: int
    #: 1-based.
    page: int

    @property
    def pages(self) -> int:
        """How many pages the search has (at least one)."""
        return max(1, -(-self.total // PAGE_SIZE))


@dataclass(frozen=True)
class Person:
    """Everything stored about one subscriber, as `comms subscribers show` prints it."""

    subscriber: Subscriber
    report: dict[str, Any]


@dataclass(frozen=True)
class Export:
    """A whole export, as `comms subscribers export --format FMT` writes it."""

    text: str
    count: int
    fmt: str


class PeopleAdmin:
    """The subscriber services of the desk's admin pages over one configuration and store."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def search(self, part: str, page: int) -> Found:
        """Page `page` (from 1) of the subscribers whose address contains `part`."""
        page = max(1, page)
        people, total = self.store.search(part, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        return Found(people, total, page)

    def person(self, uid: str) -> Person | None:
        """The subscriber with public id `uid` and their report (GDPR Art. 15), or None."""
        found = self.store.by_uid(uid)
        if found is None:
            return None
        report = self.store.report(found.email)
        return None if report is None else Person(found, report)

    def export(self, fmt: str) -> Export:
        """Every subscriber as CSV or JSON in the CLI's format."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"format must be one of {EXPORT_FORMATS}")
        out = io.StringIO(newline="")
        count = write_export(self.store.iter_subscribers(), out, fmt)
        return Export(out.getvalue(), count, fmt)

    def erase(self, uid: str) -> dict[str, int] | None:
        """Erase the subscriber `uid` as `comms subscribers remove` does (only the suppression
        hash stays); what was removed, or None when there is no such subscriber."""
        found = self.store.by_uid(uid)
        if found is None:
            return None
        return erase_person(self.config, self.store, found.email)
