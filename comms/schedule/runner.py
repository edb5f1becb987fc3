"""APScheduler wiring: scheduled sends, feed refresh, the retry pass and housekeeping.

The jobs (`comms/schedule/jobs.py`) call the same functions as the CLI. One scheduler per
database (docs/requirements.md R4, R5): `start_scheduler` takes the lease in
`comms.schedule.lease` first and returns None when another process holds it. The scheduler
always uses the wall clock, never `reference_date`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from comms.alerts import texts
from comms.alerts.notify import Alerter
from comms.content.site import read_site
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.db.incidents import SendProblem, problem_list, settle_problems
from comms.db.outage import answered, noted
from comms.db.store import Store
from comms.schedule import jobs
from comms.schedule import plan as timetable
from comms.schedule.lease import Holder, Lease, holder
from comms.schedule.watch import content_stamp

log = logging.getLogger("comms.scheduler")

JOBSTORE_TABLE = "apscheduler_jobs"
REFRESH, RETRY, HOUSEKEEPING = "refresh", "retry", "housekeeping"
BOUNCES = "bounces"
ALERTS = "alerts"
#: How often the campaign checks of `[alerts]` run (stalls count in minutes).
ALERT_MINUTES = 1.0
#: Grace for the periodic jobs; a refresh more than this late waits for its next turn.
REFRESH_GRACE = 300
RETRY_GRACE = 3600
HOUSEKEEPING_GRACE = 12 * 3600


class DailyTrigger(CronTrigger):  # type: ignore[misc]
    """A daily cron trigger that fires once when the clocks go back.

    APScheduler 3.11's CronTrigger fires twice on that day for a time inside the repeated
    hour (02:30 CEST, then 02:30 CET); the second pass of the repeated hour is skipped here.
    """

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        """The next run time, never the repeated (fold=1) pass of a wall-clock time."""
        found: datetime | None = super().get_next_fire_time(previous, now)
        while (
            found is not None
            and found.fold
            and found.utcoffset() != found.replace(fold=0).utcoffset()
        ):
            found = super().get_next_fire_time(found, found)
        return found


# -- wiring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    """One periodic job: its id, what it does in words, its trigger and grace time."""

    id: str
    label: str
    func: Any
    trigger: Any
    grace: int


def fixed_jobs(config: Config, now: datetime) -> list[Fixed]:
    """The periodic jobs the configuration asks for, as started at `now`."""
    s = config.settings.schedule
    at = s.housekeeping_time
    refresh, retry = timedelta(minutes=s.refresh_minutes), timedelta(minutes=s.retry_minutes)
    fixed = [
        Fixed(
            REFRESH,
            f"refresh feeds (every {s.refresh_minutes:g} min)",
            jobs.refresh_feeds,
            IntervalTrigger(
                minutes=s.refresh_minutes, start_date=now + refresh, timezone=config.tz
            ),
            REFRESH_GRACE,
        ),
        Fixed(
            RETRY,
            f"retry pass (every {s.retry_minutes:g} min)",
            jobs.retry_pass,
            IntervalTrigger(minutes=s.retry_minutes, start_date=now + retry, timezone=config.tz),
            RETRY_GRACE,
        ),
        Fixed(
            HOUSEKEEPING,
            f"housekeeping: purge unconfirmed sign-ups, reduce ended ones (daily at {at:%H:%M})",
            jobs.housekeeping,
            DailyTrigger(hour=at.hour, minute=at.minute, timezone=config.tz),
            HOUSEKEEPING_GRACE,
        ),
    ]
    b = config.settings.bounces
    if b.mailbox:  # without a mailbox there is nothing to read
        fixed.append(
            Fixed(
                BOUNCES,
                f"read the bounce mailbox (every {b.fetch_minutes:g} min)",
                jobs.fetch_bounces,
                IntervalTrigger(
                    minutes=b.fetch_minutes,
                    start_date=now + timedelta(minutes=b.fetch_minutes),
                    timezone=config.tz,
                ),
                RETRY_GRACE,
            )
        )
    if config.settings.alerts.to or config.settings.alerts.webhook:
        fixed.append(
            Fixed(
                ALERTS,
                "alerts: sends finished, stalled, bouncing (every minute)",
                jobs.check_alerts,
                IntervalTrigger(
                    minutes=ALERT_MINUTES,
                    start_date=now + timedelta(minutes=ALERT_MINUTES),
                    timezone=config.tz,
                ),
                REFRESH_GRACE,
            )
        )
    return fixed


def make_scheduler(config: Config, store: Store) -> BackgroundScheduler:
    """A scheduler on the project's database (its own table), in the site's time zone."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": REFRESH_GRACE},
        timezone=config.tz,
    )


def _config_arg(config: Config) -> str | None:
    return str(config.path) if config.path is not None else None


@dataclass
class SyncReport:
    """What one sync changed."""

    added: list[str]
    removed: list[str]
    held: list[str]


class SchedulerHandle:
    """A running scheduler that holds the lease; `shutdown()` stops both."""

    def __init__(self, config: Config, store: Store, scheduler: BackgroundScheduler, lease: Lease):
        self.config, self.store, self.scheduler, self.lease = config, store, scheduler, lease
        # sync() reads and writes the job store; shutdown() takes this lock first so that no
        # sync runs into the scheduler's shutdown (which holds the job store lock).
        self._sync_lock = threading.Lock()
        self._closing = False
        self._beat_stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="comms-lease", daemon=True)
        self._stamp = content_stamp(config.content_dir)
        self.started_at = now_utc()
        self._watch = threading.Thread(target=self._watch_content, name="comms-watch", daemon=True)
        #: Events seen by the listener: (kind, job id), for `comms serve`'s log and the tests.
        self.events: list[tuple[str, str]] = []

    def _scheduler_alive(self) -> bool:
        """Whether APScheduler's main loop still runs."""
        # An exception in the loop ends its thread while `running` stays true; the thread is
        # private, as BackgroundScheduler has no public way to ask.
        thread = getattr(self.scheduler, "_thread", None)
        return bool(self.scheduler.running) and thread is not None and thread.is_alive()

    def _heartbeat(self) -> None:
        interval = self.lease.length.total_seconds() / 4
        while not self._beat_stop.wait(interval):
            if not self._scheduler_alive():
                # Renewing would keep a dead scheduler's lease forever. It is left to expire
                # rather than released, since a job may still be running in the executor.
                log.error("the scheduler thread has died; the lease is no longer renewed")
                self._beat_stop.set()
                if self.scheduler.running:
                    self.scheduler.shutdown(wait=False)
                return
            try:
                kept = self.lease.renew()
            except Exception as exc:  # a database hiccup: try again at the next beat
                if not noted("scheduler lease", exc):
                    log.exception("scheduler lease: heartbeat failed")
                continue
            answered()
            if not kept:
                log.error("scheduler lease lost to another process; stopping the scheduler")
                self._beat_stop.set()
                self.scheduler.shutdown(wait=False)
                lost = texts.lease_lost(self.config, self.lease.owner, self.started_at)
                Alerter(self.config, self.store.engine).send(lost)

    def _watch_content(self) -> None:
        """Re-read the scheduled sends as soon as a content file changed (`watch_seconds`)."""
        every = self.config.settings.schedule.watch_seconds
        while not self._beat_stop.wait(every):
            try:
                stamp = content_stamp(self.config.content_dir)
                if stamp == self._stamp:
                    continue
                self._stamp = stamp
                log.info("content changed; reading the scheduled sends again")
                self.sync()
            except Exception:  # a file or database hiccup: look again at the next turn
                log.exception("content watch: cannot sync the scheduled sends")

    def gave_up(self) -> bool:
        """True once the heartbeat stopped the scheduler (its lease lost, or its thread dead)
        without `shutdown()`: this process no longer schedules, and may stand by again."""
        return self._beat_stop.is_set() and not self._beat.is_alive() and not self._closing

    def listen(self, event: JobExecutionEvent) -> None:
        """Log missed and failed jobs (docs/requirements.md R4); hold missed sends; resync.

        Missed and failed jobs are errors; a missed send is held; after each refresh the send
        jobs are synced with the content again.
        """
        if event.code == EVENT_JOB_MISSED:
            self.events.append(("missed", event.job_id))
            log.error("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            if event.job_id.startswith(timetable.SEND_PREFIX):
                slug = event.job_id.removeprefix(timetable.SEND_PREFIX)
                timetable.hold(self.store.engine, slug, event.scheduled_run_time, now_utc())
        elif event.code == EVENT_JOB_ERROR:
            self.events.append(("error", event.job_id))
            log.error("job %s failed: %s", event.job_id, event.exception)
        else:
            self.events.append(("ran", event.job_id))
        # After a digest's run: its issue's send job and the digest's next run.
        resync = event.job_id == REFRESH or event.job_id.startswith(timetable.DIGEST_PREFIX)
        if resync and event.code != EVENT_JOB_MISSED:
            self.sync()

    def sync(self) -> SyncReport:
        """Make the send jobs match the content: add, move, cancel; record held sends."""
        config = self.config
        with self._sync_lock:
            if self._closing:
                return SyncReport([], [], [])
            site, errors = read_site(config)
            now = now_utc()
            wanted = timetable.plan(config, site, errors, self.store.ledger, now)
            existing = {
                job.id: job
                for job in self.scheduler.get_jobs()
                if job.id.startswith(timetable.SEND_PREFIX)
            }
            added: list[str] = []
            grace = int(timetable.stale_limit(config).total_seconds())
            for entry in wanted.sends:
                args = (_config_arg(config), entry.slug, entry.send_at.isoformat())
                job = existing.pop(entry.job_id, None)
                if job is not None and (tuple(job.args), job.misfire_grace_time) == (args, grace):
                    continue  # unchanged: a run missed within the grace time stays due
                self.scheduler.add_job(
                    jobs.scheduled_send,
                    DateTrigger(run_date=entry.send_at, timezone=config.tz),
                    args=args,
                    id=entry.job_id,
                    name=f"send {entry.slug}",
                    replace_existing=True,
                    misfire_grace_time=grace,
                )
                added.append(entry.slug)
            removed: list[str] = []
            for job_id in existing:
                slug = job_id.removeprefix(timetable.SEND_PREFIX)
                if slug not in wanted.keep:
                    self.scheduler.remove_job(job_id)
                    removed.append(slug)
            timetable.record_held(self.store.engine, wanted.held, now, wanted.keep)
            planned = {entry.slug: entry.send_at for entry in wanted.sends}
            settle_problems(self.store.engine, planned, wanted.keep)
            self._sync_digests(wanted.digests, grace)
        for slug in added:
            log.info("scheduled send of %s", slug)
        for slug in removed:
            log.info("cancelled the scheduled send of %s", slug)
        return SyncReport(added, removed, [entry.slug for entry in wanted.held])

    def _sync_digests(self, wanted: list[timetable.PlannedDigest], grace: int) -> None:
        """Make the digest jobs match the definitions: one job per digest, at its next run."""
        existing = {
            job.id: job
            for job in self.scheduler.get_jobs()
            if job.id.startswith(timetable.DIGEST_PREFIX)
        }
        for entry in wanted:
            args = (_config_arg(self.config), entry.slug, entry.run_at.isoformat())
            job = existing.pop(entry.job_id, None)
            if job is not None and tuple(job.args) == args:
                continue
            self.scheduler.add_job(
                jobs.compose_digest,
                DateTrigger(run_date=entry.run_at, timezone=self.config.tz),
                args=args,
                id=entry.job_id,
                name=f"compose {entry.slug}",
                replace_existing=True,
                misfire_grace_time=grace,
            )
            log.info("scheduled digest %s at %s", entry.slug, entry.run_at)
        now = now_utc()
        for job_id, job in existing.items():
            if job.next_run_time is not None and job.next_run_time <= now:
                continue  # due or running: APScheduler removes it once it fired
            with suppress(JobLookupError):  # it fired meanwhile: APScheduler removed it
                self.scheduler.remove_job(job_id)

    def jobs(self) -> list[Job]:
        """The scheduler's jobs, soonest first."""
        jobs: list[Job] = self.scheduler.get_jobs()
        return jobs

    def wakeup(self) -> None:
        """Look for due jobs now (tests move the clock, then call this)."""
        self.scheduler.wakeup()

    def shutdown(self) -> None:
        """Stop: a running send finishes its messages in flight, then the lease is released."""
        jobs.STOP.set()
        self._beat_stop.set()
        if self._beat.is_alive():  # first: the heartbeat may itself be stopping the scheduler
            self._beat.join()
        if self._watch.is_alive():
            self._watch.join()
        with self._sync_lock:
            self._closing = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.lease.release()


def start_scheduler(config: Config, store: Store) -> SchedulerHandle | None:
    """Take the lease and start the scheduler; None when another process runs one."""
    lease = Lease(store.engine, config.settings.schedule.lease_seconds)
    if not lease.acquire():
        return None
    jobs.STOP.clear()
    scheduler = make_scheduler(config, store)
    handle = SchedulerHandle(config, store, scheduler, lease)
    scheduler.add_listener(handle.listen, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
    try:
        scheduler.start(paused=True)
        fixed = fixed_jobs(config, now_utc())
        for optional in (BOUNCES, ALERTS):  # the mailbox or alerts left the configuration
            if optional not in {job.id for job in fixed} and scheduler.get_job(optional):
                scheduler.remove_job(optional)
        for job in fixed:
            scheduler.add_job(
                job.func,
                job.trigger,
                args=(_config_arg(config),),
                id=job.id,
                name=job.label,
                replace_existing=True,
                misfire_grace_time=job.grace,
            )
        handle.sync()
    except BaseException:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        lease.release()
        raise
    scheduler.resume()
    handle._beat.start()
    handle._watch.start()
    return handle


# -- the view for `comms schedule` and `comms demo` ----------------------------------------


@dataclass(frozen=True)
class Upcoming:
    """One job as `comms schedule` lists it."""

    id: str
    next_run: datetime | None
    description: str


@dataclass(frozen=True)
class Overview:
    """The scheduler's state: who runs it, its jobs soonest first, held sends and problems."""

    holder: Holder | None
    jobs: list[Upcoming]
    held: list[timetable.PlannedSend]
    #: Scheduled sends that were refused or failed, not yet dealt with.
    problems: list[SendProblem]


def _send_label(entry: timetable.PlannedSend) -> str:
    return f"send #{entry.number} „{entry.subject}“ ({entry.slug})"


def _digest_label(entry: timetable.PlannedDigest) -> str:
    then = f", to send at {entry.send_at:%H:%M} once ready" if entry.send_at else ""
    return f"compose digest „{entry.title}“ ({entry.slug}){then}"


def overview(config: Config, store: Store, now: datetime, live: bool = True) -> Overview:
    """The jobs of the running scheduler (from its job store), else what a start at `now` makes.

    `live=False` always computes (the demo shows the plan as of its reference date).
    """
    site, errors = read_site(config)
    wanted = timetable.plan(config, site, errors, store.ledger, now)
    current = holder(store.engine) if live else None
    running = current if current is not None and current.expires_at > now_utc() else None
    labels = {entry.job_id: _send_label(entry) for entry in wanted.sends}
    labels |= {entry.job_id: _digest_label(entry) for entry in wanted.digests}
    fixed = fixed_jobs(config, now)
    labels |= {job.id: job.label for job in fixed}
    if running is not None:
        jobstore = SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)
        jobstore.start(make_scheduler(config, store), "default")
        # The periodic jobs from the job store; the sends from the content as it is now, so
        # that a send made ready, moved or cancelled since the scheduler's last sync shows at
        # once (the scheduler follows within `schedule.watch_seconds`). A send whose file has
        # errors keeps its stored job, as the sync does.
        listed = [
            Upcoming(job.id, job.next_run_time, labels.get(job.id, job.name))
            for job in jobstore.get_all_jobs()
            if not job.id.startswith(timetable.SEND_PREFIX)
            or job.id.removeprefix(timetable.SEND_PREFIX) in wanted.keep
        ]
        listed += [
            Upcoming(entry.job_id, entry.send_at.astimezone(config.tz), labels[entry.job_id])
            for entry in wanted.sends
        ]
    else:
        listed = [
            Upcoming(entry.job_id, entry.send_at.astimezone(config.tz), labels[entry.job_id])
            for entry in wanted.sends
        ]
        listed += [
            Upcoming(entry.job_id, entry.run_at, labels[entry.job_id]) for entry in wanted.digests
        ]
        listed += [
            Upcoming(job.id, job.trigger.get_next_fire_time(None, now), job.label) for job in fixed
        ]
    far = datetime.max.replace(tzinfo=UTC)  # paused jobs last
    listed.sort(key=lambda job: (job.next_run or far, job.id))
    return Overview(running, listed, wanted.held, problem_list(store.engine))
