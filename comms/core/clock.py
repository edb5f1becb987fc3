"""The clock: aware UTC datetimes, the only kind the program stores or compares."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)
