"""What the desk in the browser does about sending, through the services the CLI uses: the
plan an approver confirms (`comms send`'s question), sending now (`comms send ISSUE --now
--yes`), scheduling (the issue's `send_at`, written and committed as an editor would), a
campaign's progress (`comms status ISSUE --watch`), the held and refused scheduled sends
(`comms schedule`, `comms status`); each step in the audit log.

A send started on the desk runs in a thread of the serving process, as the scheduler's send
jobs do in `comms serve`: the request waits only until the campaign is in the ledger (its
recipients snapshotted, the archive page published), so from then on it is as crash-safe as
`comms send` (a crashed run's rows are resumed by the next run, `comms worker` or the retry
pass on any host); `close()` asks it to finish the messages in flight and hand the rest back.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from comms.content.front_matter_edit import read_front_matter, set_values
from comms.content.models import Issue, Site
from comms.content.site import find_issue, read_site
from comms.content.source_files import read_source
from comms.core.clock import now_utc
from comms.core.errors import CommsError, ContentError
from comms.db.desk_accounts import Account
from comms.db.figures import EditionProgress, edition_progress
from comms.db.health import read_health
from comms.db.incidents import Held, SendProblem, held_list, problem_list
from comms.db.ledger import Campaign
from comms.db.status import CampaignStatus
from comms.publish.templating import Formatter
from comms.sending.approval import short, version_of
from comms.sending.campaign import Cleared, SendPlan, SendReport, clear, plan_send, send_to_list
from comms.sending.desk_office import Office, save_as
from comms.sending.rules import READY, NotSendable, Request
from comms.sending.run import SendOptions

log = logging.getLogger("comms.desk")

#: How long a request waits for a send it started to be in the ledger (seconds); past that the
#: page says it is being started, and the status page shows when it is.
START_WAIT = 60.0
#: The desk's "Send now" is `comms send --now`: a person sends before any send_at, on purpose.
SEND_NOW = True
#: How a `send_at` is written into the front matter (the site's time zone, as people write it).
SEND_AT_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Confirmation:
    """What an approver confirms before a send or a schedule: the issue, its version and its
    recipients per edition (`comms send`'s plan)."""

    issue: Issue
    #: The approval digest of the version that goes out.
    version: str
    plan: SendPlan
    #: When it goes out: None for now.
    at: datetime | None
    #: A scheduler holds its lease now (`comms serve` on any host): a schedule will be sent.
    scheduler: bool = True


@dataclass(frozen=True)
class SendState:
    """Where a campaign stands, per edition, as `comms status ISSUE` reads it from any host."""

    campaign: Campaign
    editions: list[EditionProgress]
    next_attempt: datetime | None
    #: A send started on this desk's process is running now.
    running_here: bool
    #: Why the desk's last send of the issue in this process ended with an error, if it did.
    failure: str | None

    @property
    def total(self) -> int:
        """Every delivery of the campaign."""
        return sum(e.total for e in self.editions)

    @property
    def settled(self) -> int:
        """The final deliveries."""
        return sum(e.settled for e in self.editions)

    @property
    def sending(self) -> bool:
        """Whether the send goes on (the page follows it)."""
        return self.running_here or self.campaign.status == CampaignStatus.SENDING


@dataclass(frozen=True)
class Scheduled:
    """A ready issue with a `send_at` whose campaign has not started."""

    issue: Issue
    at: datetime


@dataclass(frozen=True)
class Overview:
    """Every campaign, the scheduled sends, and what the scheduler held or refused."""

    campaigns: list[Campaign]
    scheduled: list[Scheduled]
    held: list[Held]
    problems: list[SendProblem]


class SendingDesk:
    """The desk's sending services over one `Office` (its configuration, database, audit)."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.config = office.config
        self.store = office.store
        self.accounts = office.accounts
        #: Set by `close()`: a running send finishes the messages in flight and stops.
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._runs: dict[str, threading.Thread] = {}
        self._failures: dict[str, str] = {}
        office.when_closed(self.close)

    def fmt(self) -> Formatter:
        """Dates and times in the site's language and zone."""
        return Formatter(self.config)

    def _read(self, slug: str) -> tuple[Site, list[ContentError], Issue]:
        site, problems = read_site(self.config)
        return site, problems, find_issue(self.config, site, problems, slug)

    def _refuse(self, account: Account, action: str, slug: str, reason: str) -> CommsError:
        self.accounts.audit(account.name, f"{action}-refused", slug, detail=reason)
        return CommsError(reason)

    def _check(self, account: Account, action: str, slug: str, at: datetime | None) -> None:
        if not account.may("approver"):
            raise CommsError(f"{account.name} may not send (role {account.role})")
        if at is not None and at <= now_utc():
            when = self.fmt().brief(at)
            raise self._refuse(
                account, action, slug,
                f"{when} has passed; choose a later time, or send the issue now",
            )  # fmt: skip
        if at is not None and self.store.ledger.campaign(slug) is not None:
            raise self._refuse(
                account, action, slug,
                f"the send of issue '{slug}' has started; its status page shows how it goes",
            )  # fmt: skip

    def _cleared(
        self, account: Account, action: str, slug: str, at: datetime | None
    ) -> tuple[Cleared, str]:
        """Ask the send rules as `comms send --now` asks (`at` None: a person sends now, before
        any send_at), or as the scheduler will ask when the issue is due at `at`; the issue
        cleared (every edition rendered once) and its version. NotSendable, audited, when the
        rules refuse."""
        config, store = self.config, self.store
        site, problems, issue = self._read(slug)
        if at is None:
            request = Request(issue, config.now(), early=SEND_NOW)
        else:
            request = Request.when_due(issue.model_copy(update={"send_at": at}), at)
        try:
            cleared = clear(config, store, site, problems, request)
        except NotSendable as exc:
            self.accounts.audit(account.name, f"{action}-refused", slug, detail=str(exc))
            raise
        return cleared, version_of(cleared.editions.rendered, cleared.issue).digest

    def confirmation(self, slug: str, account: Account, at: datetime | None) -> Confirmation:
        """What sending issue `slug` now (`at` None) or at `at` would do, for the approver to
        confirm; CommsError (NotSendable from the send rules) with the reason it may not."""
        action = "send" if at is None else "schedule"
        self._check(account, action, slug, at)
        config = self.config
        cleared, digest = self._cleared(account, action, slug, at)
        options = SendOptions.of(config.settings.delivery)
        plan = plan_send(config, self.store, cleared.issue, options)
        detail = f"{plan.recipients} recipient(s)" + (
            f", send_at {at.astimezone(config.tz).strftime(SEND_AT_FORMAT)}" if at else ""
        )
        self.accounts.audit(account.name, f"{action}-asked", slug, digest, detail)
        stall = timedelta(minutes=config.settings.schedule.stall_minutes)
        running = read_health(self.store.engine, now_utc(), stall).scheduler
        alive = running is not None and running.alive
        return Confirmation(cleared.issue, digest, plan, at, alive)

    def _changed(self, slug: str, digest: str) -> str:
        return (
            f"issue '{slug}' changed since the confirmation page was shown (now version "
            f"{short(digest)}); check it again; nothing was done"
        )

    def send_now(self, slug: str, account: Account, seen: str) -> None:
        """Send issue `slug` to its subscribers now, as `comms send ISSUE --now --yes` does,
        provided its version is still `seen` (the one confirmed); returns once the campaign is
        in the ledger (the run goes on in a thread). CommsError says why not."""
        self._check(account, "send", slug, None)
        with self._lock:
            running = self._runs.get(slug)
        if running is not None and running.is_alive():
            return  # a second confirmation (a reload, a double click): the send runs already
        config, store = self.config, self.store
        cleared, digest = self._cleared(account, "send", slug, None)
        if digest != seen:
            raise self._refuse(account, "send", slug, self._changed(slug, digest))
        started = threading.Event()
        failed: list[str] = []

        def run() -> None:
            try:
                options = replace(SendOptions.of(config.settings.delivery), stop=self.stop)
                report = send_to_list(
                    config, store, cleared, options, on_start=lambda _plan: started.set()
                )
                self._ended(slug, report)
            except Exception as exc:  # reported on the page and in the log, never lost
                reason = str(exc) if isinstance(exc, CommsError) else f"{type(exc).__name__}: {exc}"
                failed.append(reason)
                with self._lock:
                    self._failures[slug] = reason
                log.error("desk send of %s failed: %s", slug, reason)
            finally:
                started.set()
                with self._lock:
                    if self._runs.get(slug) is threading.current_thread():
                        del self._runs[slug]

        thread = threading.Thread(target=run, name=f"comms-desk-send-{slug}", daemon=True)
        with self._lock:
            self._failures.pop(slug, None)
            self._runs[slug] = thread
        thread.start()
        started.wait(START_WAIT)
        if failed:
            self.accounts.audit(account.name, "send-failed", slug, digest, failed[0])
            raise CommsError(failed[0])
        self.accounts.audit(account.name, "send", slug, digest, "started on the desk")

    def _ended(self, slug: str, report: SendReport) -> None:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts.items()))
        if report.stopped:
            with self._lock:
                self._failures[slug] = f"campaign stopped: {report.stopped}"
        log.info("desk send of %s ended: %s", slug, counts)

    def schedule(self, slug: str, account: Account, seen: str, at: datetime) -> str | None:
        """Set issue `slug`'s `send_at` to `at` in its file, as an editor would write it, and
        where the content folder is a git repository commit it with the account as author
        (the scheduler follows the file), provided the version is still `seen` and the send
        rules let it go out (but for its time). The commit; CommsError says why not."""
        self._check(account, "schedule", slug, at)
        config = self.config
        cleared, digest = self._cleared(account, "schedule", slug, at)
        if digest != seen:
            raise self._refuse(account, "schedule", slug, self._changed(slug, digest))
        issue = cleared.issue
        stamp = at.astimezone(config.tz).strftime(SEND_AT_FORMAT)
        source = read_source(issue.path)
        front = read_front_matter(source.text)
        if front is None:
            raise CommsError(f"{issue.path}: the front matter cannot be read; run comms check")
        try:
            text = set_values(source.text, front, {"send_at": stamp})
        except ValueError as exc:
            raise CommsError(f"{issue.path}: {exc}") from None
        message = f"Schedule issue {slug} for {stamp} on the desk"
        _, commit = save_as(account, config.content_dir, issue.path, text, source.digest, message)
        detail = f"send_at {stamp}; " + (f"commit {commit}" if commit else "no git repository")
        self.accounts.audit(account.name, "schedule", slug, digest, detail)
        return commit

    def state(self, slug: str) -> SendState | None:
        """Where the campaign of issue `slug` stands; None before it started."""
        campaign = self.store.ledger.campaign(slug)
        if campaign is None:
            return None
        with self._lock:
            thread = self._runs.get(slug)
            failure = self._failures.get(slug)
        return SendState(
            campaign,
            edition_progress(self.store.engine, campaign.id),
            self.store.ledger.next_attempt(campaign.id),
            thread is not None and thread.is_alive(),
            failure,
        )

    def starting(self, slug: str) -> bool:
        """Whether a send of `slug` started on this process has not reached the ledger yet."""
        with self._lock:
            thread = self._runs.get(slug)
        return thread is not None and thread.is_alive()

    def overview(self) -> Overview:
        """Every campaign (newest first), the scheduled sends (soonest first), and the sends
        the scheduler held as too late or refused, which wait for a person."""
        site, _problems = read_site(self.config)
        started = self.store.ledger.campaigns()
        names = {c.slug for c in started}
        scheduled = [
            Scheduled(issue, issue.send_at)
            for issue in site.issues.values()
            if issue.send_at is not None and READY.reason(issue) is None and issue.slug not in names
        ]
        scheduled.sort(key=lambda s: (s.at, s.issue.slug))
        engine = self.store.engine
        newest = sorted(started, key=lambda c: c.created_at, reverse=True)
        return Overview(newest, scheduled, held_list(engine), problem_list(engine))

    def close(self) -> None:
        """Ask every send started here to finish the messages in flight, then wait for it."""
        self.stop.set()
        with self._lock:
            threads = list(self._runs.values())
        for thread in threads:
            thread.join()
