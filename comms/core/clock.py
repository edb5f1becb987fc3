"""The one clock: every decision that depends on "now" asks it; no other module reads the time.

It answers two questions. The current instant (`now_utc`, `epoch`): what is recorded, leases
and claims, expiry, retries, when a scheduled send is due, a mail's Date. And "now" for the
site's content (`site_now`, what `Config.now` answers): which issues are upcoming or public, what
`comms new` dates, the demo's summary, whether an issue's `send_at` has come for `comms send`;
the start of `reference_date` when the settings set one, so the sample content from 2020 reads
as current. Aware datetimes only; UTC is what is stored and compared. Tests move it with
time-machine (which also moves the libraries' clocks: itsdangerous's token timestamps,
APScheduler), or pass `now` where a function takes one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo


def now_utc() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)


def epoch() -> float:
    """The current instant in seconds since the epoch (rate windows, the send budget)."""
    return now_utc().timestamp()


def site_now(tz: tzinfo, reference_date: date | None = None) -> datetime:
    """ "Now" for the site's content, in its zone: the start of `reference_date` if set, else
    the current instant."""
    if reference_date is not None:
        return datetime.combine(reference_date, time(), tzinfo=tz)
    return now_utc().astimezone(tz)
