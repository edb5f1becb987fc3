"""What comms has seen of each item (digest, sequence, change time) and the timestamps it implies.

Feeds and calendars need `published`, `updated`, SEQUENCE and LAST-MODIFIED that never come
from the build time, yet change when an item changes. Editors may set `published`/`updated`;
whatever they leave out is derived from the content (an issue's send time, an award's call) or
from this record, kept in the database (`feed_items`; `var/feeds-state.json` without one): per
item a digest of its content, a sequence number bumped on every change and the time the change
was first seen.
The same content with the same record gives the same timestamps, so rebuilds are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from comms.content.fields import instant
from comms.content.models import Award, Issue, IssueStatus, Item, Site
from comms.publish.state import PublishState


@dataclass(frozen=True)
class Record:
    """What comms knows about one item: its content digest and its change history."""

    digest: str
    sequence: int
    seen: datetime
    changed: datetime | None = None


@dataclass(frozen=True)
class Stamp:
    """The timestamps an item carries in every feed and calendar (UTC, whole seconds)."""

    published: datetime
    updated: datetime
    sequence: int


def digest(item: Item) -> str:
    """A digest of everything an editor wrote in the item (not where or on which line)."""
    try:
        raw = item.model_dump_json(exclude={"path", "lines", "html"}).encode("utf-8")
    except ValueError:  # lone surrogates, which only the slow path can carry
        data = item.model_dump(mode="json", exclude={"path", "lines", "html"})
        raw = json.dumps(data, sort_keys=True).encode("utf-8")
    return hashlib.sha256(item.kind.encode("utf-8") + b"\0" + raw).hexdigest()[:32]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _moment(value: date | datetime, tz: ZoneInfo) -> datetime:
    """A date is taken as the start of that day in the site's time zone."""
    return _utc(instant(value, tz))


def _content_date(item: Item) -> date | datetime | None:
    if isinstance(item, Issue):
        return item.send_at or item.published or item.date
    if item.published is not None:
        return item.published
    if isinstance(item, Award):
        return item.call.opens
    return None


def stamp(item: Item, record: Record, tz: ZoneInfo) -> Stamp:
    """Published: the item's own date, else when comms first saw it; updated: the latest of
    published, the editor's `updated` and the recorded last change."""
    when = _content_date(item)
    published = _moment(when, tz) if when is not None else _utc(record.seen)
    candidates = [published]
    if item.updated is not None:
        candidates.append(_utc(item.updated))
    if record.changed is not None:
        candidates.append(_utc(record.changed))
    return Stamp(published=published, updated=max(candidates), sequence=record.sequence)


def is_public(item: Item, item_stamp: Stamp, now: datetime, site: Site) -> bool:
    """Published items only: issues that are ready, and nothing before its publication time.

    The one rule of what is public, for the web archive and every feed. An issue that has been
    sent (its slug in `site.sent`) is public at once, also before its `send_at`: its mails link
    to its page. With `site.public_on_send` (`delivery.require_approval`) an issue with a
    `send_at` is public only then: its `send_at` passing publishes nothing, so an issue nobody
    approved never reaches the web or a feed (an issue without `send_at` follows its
    `published` or `date`: one sent before comms, or from another tool).
    """
    if isinstance(item, Issue):
        if item.status is not IssueStatus.READY:
            return False
        if item.slug in site.sent:
            return True
        if site.public_on_send and item.send_at is not None:
            return False
    return item_stamp.published <= now


def issue_is_public(issue: Issue, site: Site, now: datetime) -> bool:
    """`is_public` for an issue without the feed history: its publication time is its own."""
    when = _content_date(issue)
    assert when is not None  # an issue always has its date
    published = _moment(when, site.tz)
    return is_public(issue, Stamp(published, published, 0), now, site)


class History:
    """The records of every item comms has seen, kept in a PublishState (the database)."""

    def __init__(self, state: PublishState, records: dict[str, Record] | None = None) -> None:
        self.state = state
        self.records: dict[str, Record] = dict(records or {})
        self._changed: set[str] = set()

    @classmethod
    def load(cls, state: PublishState) -> History:
        """Read every record; a broken state file is a StateError."""
        rows = state.feed_rows()
        return cls(state, {uid: Record(*row) for uid, row in rows.items()})

    def observe(
        self, items: Iterable[Item], now: datetime, digests: Callable[[Item], str] = digest
    ) -> dict[str, Record]:
        """Record each item's digest (by `digests`, `digest` kept across builds); a changed
        digest bumps the sequence and the change time."""
        seen_at = _utc(now)
        out: dict[str, Record] = {}
        for item in items:
            current = digests(item)
            record = self.records.get(item.uid)
            if record is None:
                record = Record(digest=current, sequence=0, seen=seen_at)
            elif record.digest != current:
                record = replace(
                    record, digest=current, sequence=record.sequence + 1, changed=seen_at
                )
            else:
                out[item.uid] = record
                continue
            self.records[item.uid] = record
            self._changed.add(item.uid)
            out[item.uid] = record
        return out

    def save(self) -> bool:
        """Store the records that changed; True if there were any."""
        if not self._changed:
            return False
        changed = {uid: self.records[uid] for uid in sorted(self._changed)}
        rows = {uid: (r.digest, r.sequence, r.seen, r.changed) for uid, r in changed.items()}
        self.state.save_feed_rows(rows)
        self._changed.clear()
        return True
