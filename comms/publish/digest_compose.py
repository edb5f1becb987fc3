"""A digest run: the issue file composed from the items in a digest's horizon.

The composed issues of earlier runs are the record of what went out ("nothing twice"): each
lists in `digest_items` the state (start and status, publication, deadline) of every item it
showed. An item already recorded with the same state is left out; one whose state changed
(postponed, cancelled, moved) comes again, marked by its status. The record lives in
content, so it travels with git to every host, and a run is repeatable: the issue file is
written atomically and never overwritten, so a second run of the same day does nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from babel.dates import format_date

from comms.content.fields import instant
from comms.content.models import KINDS, Award, Digest, Event, Practice, Site
from comms.core.config import Config
from comms.publish.templating import babel_locale


@dataclass(frozen=True)
class Composition:
    """What one run of a digest on one day composes (or why nothing)."""

    digest: Digest
    day: date
    path: Path
    #: The issue file's text; None when there is not enough to say (`min_items`).
    text: str | None
    #: New or changed items, `kind/slug`.
    items: list[str] = field(default_factory=list)
    reason: str = ""


class _Dumper(yaml.SafeDumper):
    """Plain YAML as an editor writes it: the same date twice is written twice, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def issue_slug(digest: Digest, day: date) -> str:
    """The slug of the issue a digest composes on `day`."""
    return f"{day.isoformat()}-{digest.slug}"


def event_state(event: Event, config: Config) -> str:
    """What of an event makes it news again when it changes: start and status."""
    return f"{event.start_at(config.tz).isoformat()}|{event.status}"


def _record(site: Site, digest: Digest, day: date) -> dict[str, str]:
    """The latest state each item had in an earlier run of `digest` (before `day`)."""
    earlier = sorted(
        (i for i in site.issues.values() if i.from_digest == digest.slug and i.date < day),
        key=lambda i: (i.date, i.slug),
    )
    record: dict[str, str] = {}
    for issue in earlier:
        record.update(issue.digest_items)
    return record


def _covered(config: Config, digest: Digest) -> set[str]:
    return {*(digest.regions or config.settings.regions), digest.statewide}


def _wanted(digest: Digest, topics: list[str]) -> bool:
    return not digest.topics or bool(set(digest.topics) & set(topics))


def _events(
    config: Config, site: Site, digest: Digest, day: date, record: dict[str, str]
) -> list[tuple[Event, str]]:
    start = instant(day, config.tz)
    limit = start + timedelta(days=digest.horizon)
    regions = _covered(config, digest)
    found = []
    for event in sorted(site.events.values(), key=lambda e: (e.start_at(config.tz), e.slug)):
        if event.region not in regions or not _wanted(digest, event.topics):
            continue
        state = event_state(event, config)
        before = record.get(event.uid)
        if before is None:
            # New: in the horizon and taking place (a cancellation of something never
            # announced is no news).
            if start <= event.start_at(config.tz) < limit and event.status != "cancelled":
                found.append((event, state))
        elif before != state and event.end_at(config.tz) > start:
            found.append((event, state))  # changed since it was shown, wherever it moved
    return found


def _practices(
    config: Config, site: Site, digest: Digest, day: date, record: dict[str, str]
) -> list[tuple[Practice, str]]:
    since = day - timedelta(days=digest.horizon)
    regions = _covered(config, digest)
    found = []
    for practice in sorted(site.practices.values(), key=lambda p: p.slug):
        shown = practice.updated or practice.published
        if shown is None or practice.region not in regions:
            continue
        when = shown.date() if isinstance(shown, datetime) else shown
        state = when.isoformat()
        if since < when <= day and _wanted(digest, practice.topics):
            if record.get(practice.uid) != state:
                found.append((practice, state))
    return found


def _award(
    site: Site, digest: Digest, day: date, record: dict[str, str]
) -> tuple[Award, str] | None:
    limit = day + timedelta(days=digest.horizon)
    due = sorted(
        (a for a in site.awards.values() if day <= a.call.deadline < limit),
        key=lambda a: (a.call.deadline, a.slug),
    )
    for award in due:
        state = award.call.deadline.isoformat()
        if record.get(award.uid) != state:
            return award, state
    return None


def _recipients(
    config: Config, digest: Digest, chosen: list[Event | Practice | Award]
) -> list[str]:
    """The regions the issue goes to: those with items, so that nobody gets a mail without
    any; every region ([]) when the statewide section (or an award) has something for all."""
    with_items = {item.region for item in chosen if isinstance(item, Event | Practice)}
    if digest.statewide in with_items or any(isinstance(item, Award) for item in chosen):
        covered = {*(digest.regions or config.settings.regions), digest.statewide}
        return [] if set(config.settings.regions) <= covered else sorted(covered)
    return sorted(with_items)


def _pattern(text: str, day: date, config: Config) -> str:
    locale = babel_locale(config.settings.site.language)
    return text.format(
        date=day.strftime("%d.%m.%Y"), month=format_date(day, "LLLL y", locale=locale)
    )


def _next_number(site: Site) -> int:
    return max((issue.number for issue in site.issues.values()), default=0) + 1


def compose(config: Config, site: Site, digest: Digest, day: date) -> Composition:
    """The issue `digest` composes on `day` from the site's items (nothing is written)."""
    slug = issue_slug(digest, day)
    path = config.content_dir / KINDS["issue"].folder / f"{slug}.md"
    record = _record(site, digest, day)
    kinds = set(digest.kinds)
    events = _events(config, site, digest, day, record) if "events" in kinds else []
    practices = _practices(config, site, digest, day, record) if "practices" in kinds else []
    award = _award(site, digest, day, record) if "awards" in kinds else None
    chosen: list[tuple[Event | Practice | Award, str]] = [*events, *practices]
    if award is not None:
        chosen.append(award)
    uids = [item.uid for item, _ in chosen]
    if len(chosen) < digest.min_items:
        reason = f"{len(chosen)} new or changed item(s), fewer than min_items {digest.min_items}"
        return Composition(digest, day, path, None, uids, reason)
    data: dict[str, Any] = {
        "number": _next_number(site),
        "subject": _pattern(digest.subject, day, config),
        "preheader": _pattern(digest.preheader, day, config),
        "date": day,
    }
    if digest.send_at is not None:
        data["send_at"] = datetime.combine(day, digest.send_at).strftime("%Y-%m-%d %H:%M")
    data["status"] = digest.status.value
    data["from_digest"] = digest.slug
    regions = _recipients(config, digest, [item for item, _ in chosen])
    if regions:
        data["regions"] = regions
    if digest.topics:
        data["topics"] = list(digest.topics)
    if events:
        data["events"] = [event.slug for event, _ in events]
    if practices:
        data["practices"] = [practice.slug for practice, _ in practices]
    if award is not None:
        data["award"] = award[0].slug
    data["digest_items"] = {item.uid: state for item, state in chosen}
    data["published"] = day
    front = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
    text = f"---\n{front}---\n{digest.body.strip()}\n"
    return Composition(digest, day, path, text, uids)


def write_new(path: Path, text: str) -> bool:
    """Write `text` to `path` whole or not at all, never over an existing file: False when the
    file exists (a run of the same day, or an editor's edits, are kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        # A hard link appears at once and fails if the name is taken: an atomic "create new".
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def run_time(digest: Digest, day: date, config: Config) -> datetime:
    """When on `day` the digest is composed, in the site's time zone."""
    return datetime.combine(day, digest.compose_at, tzinfo=config.tz)


def next_run(digest: Digest, after: datetime, config: Config) -> datetime:
    """The first composition time of `digest` at or after `after`."""
    local = after.astimezone(config.tz)
    day = digest.cadence.next_on_or_after(local.date())
    if run_time(digest, day, config) < local:
        day = digest.cadence.next_on_or_after(day + timedelta(days=1))
    return run_time(digest, day, config)


@dataclass(frozen=True)
class RunResult:
    """What a run did: its composition, and whether this run wrote the issue file."""

    composition: Composition
    written: bool
    #: The issue file was there already (a run of the same day, perhaps edited since).
    existed: bool


def run_digest(config: Config, site: Site, digest: Digest, day: date, dry_run: bool) -> RunResult:
    """Compose `digest` for `day` and write its issue file unless it exists (or `dry_run`)."""
    composition = compose(config, site, digest, day)
    existed = composition.path.exists()
    if dry_run or composition.text is None or existed:
        return RunResult(composition, False, existed)
    written = write_new(composition.path, composition.text)
    return RunResult(composition, written, not written)
