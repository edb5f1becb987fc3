"""What a send run needs of the database, as protocols: the send ledger implements them.

The run claims deliveries and records outcomes through these alone; it never sees the
subscriber store (a bounce ends a subscription inside the ledger's writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from comms.db.outcomes import Claimed, Outcome


class OutcomeWriter(Protocol):
    """Writes a group of outcomes in one transaction (the ledger's writer)."""

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Write `outcomes` durably, or raise."""

    def close(self) -> None:
        """Give the connection back."""


class SuppressionCheck(Protocol):
    """A per-thread lookup in the suppression list."""

    def reason(self, key: str) -> str | None:
        """Why the address with this suppression key is suppressed right now, or None."""

    def close(self) -> None:
        """Give the connection back."""


class SendLedger(Protocol):
    """What a send run needs of the send ledger: claims, outcomes, suppression checks."""

    def claim(
        self, cid: int, owner: str, limit: int, now: datetime, until: datetime
    ) -> list[Claimed]:
        """Take up to `limit` due deliveries of campaign `cid` for `owner` until `until`."""

    def writer(self, source: str, owner: str) -> OutcomeWriter:
        """A writer of outcomes for rows `owner` holds; bounces it records end the subscription."""

    def suppression_probe(self) -> SuppressionCheck:
        """A suppression lookup for one worker thread."""

    def parallel_writes(self) -> bool:
        """Whether writers of outcomes commit side by side (else one at a time: SQLite)."""

    def renew(self, cid: int, owner: str, until: datetime) -> int:
        """Extend the lease of the rows `owner` holds; returns how many."""

    def release_orphans(
        self, cid: int, abandoned: Callable[[str], bool], now: datetime, keep: str | None = None
    ) -> int:
        """Requeue rows whose owner is gone or whose lease ran out (never `keep`'s)."""

    def unfinished_elsewhere(self, cid: int, owner: str, soon: datetime) -> int:
        """Rows another run holds, or that come due by `soon`."""

    def reserve(self, cid: int, count: int, rate: float, now: float) -> float:
        """Reserve `count` messages of the campaign's one send budget; when the first may go."""
