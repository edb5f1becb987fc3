"""What the scheduler should run: send jobs and held sends computed from content and ledger.

`comms/schedule/runner.py` turns the plan into APScheduler jobs; `comms schedule` prints it
without a running scheduler. Sends that are more than `schedule.stale_after_hours` late are held:
recorded in `held_sends` and left for an editor to release with `comms send ISSUE --now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.content.models import KINDS, Site
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.db.ledger import Ledger
from comms.db.tables import held_sends
from comms.publish.digest_compose import issue_slug, next_run
from comms.sending.rules import READY

SEND_PREFIX = "send:"
DIGEST_PREFIX = "digest:"


@dataclass(frozen=True)
class PlannedSend:
    """One ready issue with a `send_at` whose campaign has not started."""

    slug: str
    number: int
    subject: str
    send_at: datetime

    @property
    def job_id(self) -> str:
        """The APScheduler job id of this send."""
        return SEND_PREFIX + self.slug


@dataclass(frozen=True)
class PlannedDigest:
    """The next composition of a digest (content/digests/<slug>.md)."""

    slug: str
    title: str
    run_at: datetime
    #: When the composed issue is due to go out (its `send_at`), if the digest says.
    send_at: datetime | None

    @property
    def job_id(self) -> str:
        """The APScheduler job id of this run: one id per run, so that a sync never replaces
        the job of a run that APScheduler is finishing (and removes once it fired)."""
        return f"{DIGEST_PREFIX}{self.slug}@{self.run_at.date().isoformat()}"


@dataclass(frozen=True)
class Plan:
    """The wanted send jobs, the sends held as stale, and issues whose jobs stay untouched."""

    sends: list[PlannedSend]
    held: list[PlannedSend]
    #: Slugs of issue files with errors: their existing jobs are kept, not cancelled by a typo.
    keep: frozenset[str]
    #: The next run of each digest, soonest first.
    digests: list[PlannedDigest] = field(default_factory=list)


def stale_limit(config: Config) -> timedelta:
    """How late a scheduled send may still go out by itself."""
    return timedelta(hours=config.settings.schedule.stale_after_hours)


def is_stale(config: Config, due: datetime, now: datetime) -> bool:
    """True when a send due at `due` is too late at `now` to go out by itself."""
    return now - due > stale_limit(config)


def plan(
    config: Config, site: Site, errors: list[ContentError], ledger: Ledger, now: datetime
) -> Plan:
    """Compute the send jobs from content: ready issues with `send_at` and no campaign yet."""
    started = {campaign.slug for campaign in ledger.campaigns()}
    sends: list[PlannedSend] = []
    held: list[PlannedSend] = []
    for issue in site.issues.values():
        # The status rule alone: the job asks the whole chain when it is due, so that an
        # error fixed or an approval given meanwhile needs no new plan.
        if READY.reason(issue) is not None or issue.send_at is None or issue.slug in started:
            continue
        entry = PlannedSend(issue.slug, issue.number, issue.subject, issue.send_at)
        (held if is_stale(config, issue.send_at, now) else sends).append(entry)
    folder = KINDS["issue"].folder
    keep = frozenset(e.path.stem for e in errors if not e.warning and e.path.parent.name == folder)
    order = sorted(sends, key=lambda s: (s.send_at, s.slug))
    held_order = sorted(held, key=lambda s: (s.send_at, s.slug))
    return Plan(order, held_order, keep, digest_runs(config, site, now))


def digest_runs(config: Config, site: Site, now: datetime) -> list[PlannedDigest]:
    """Each digest's next composition: the first run time from `now` whose issue file does not
    exist yet. A run missed while the scheduler was down is made on restart from its stored
    job (within `schedule.stale_after_hours`), not planned again: a run that composed nothing
    leaves no trace to tell it from one still to come."""
    folder = config.content_dir / KINDS["issue"].folder
    found = []
    for digest in site.digests.values():
        at = next_run(digest, now, config)
        while (folder / f"{issue_slug(digest, at.date())}.md").exists():
            at = next_run(digest, at + timedelta(minutes=1), config)
        send_at = (
            datetime.combine(at.date(), digest.send_at, tzinfo=config.tz)
            if digest.send_at
            else None
        )
        found.append(PlannedDigest(digest.slug, digest.title, at, send_at))
    return sorted(found, key=lambda d: (d.run_at, d.slug))


def record_held(
    engine: Engine, held: list[PlannedSend], now: datetime, keep: frozenset[str]
) -> None:
    """Make `held_sends` match the plan: add new holds, drop ones that no longer apply."""
    wanted = {entry.slug: entry.send_at.astimezone(UTC) for entry in held}
    with engine.begin() as conn:
        rows = conn.execute(sa.select(held_sends.c.slug, held_sends.c.due_at)).all()
        for slug, due_at in rows:
            if slug not in keep and wanted.get(slug) != due_at:
                conn.execute(sa.delete(held_sends).where(held_sends.c.slug == slug))
        present = {slug for slug, due_at in rows if wanted.get(slug) == due_at}
        for slug, due_at in wanted.items():
            if slug not in present:
                conn.execute(sa.insert(held_sends).values(slug=slug, due_at=due_at, held_at=now))


def hold(engine: Engine, slug: str, due_at: datetime, now: datetime) -> None:
    """Record one held send (a job that fired or was found too late)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(held_sends).where(held_sends.c.slug == slug))
        conn.execute(sa.insert(held_sends).values(slug=slug, due_at=due_at, held_at=now))
