"""Sending an issue: the plan, proof and send services; campaigns that start, resume, retry."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

from comms.content.models import Issue, Site
from comms.content.site import read_site
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError, ContentErrors
from comms.core.languages import Editions, site_editions
from comms.core.process import is_abandoned
from comms.db.approvals import Desk, ProofRecord
from comms.db.ledger import Campaign
from comms.db.outage import patiently
from comms.db.publishing import DbPublishState
from comms.db.status import WAITING, CampaignStatus, DeliveryStatus
from comms.db.store import Store, open_store
from comms.mail.message import MessageFactory
from comms.mail.transports import open_transport
from comms.publish.refresh import publish_now
from comms.publish.render import RenderedIssue, render_issue
from comms.sending.approval import (
    Version,
    current_version,
    destination,
    proof_message,
    version_of,
    who,
)
from comms.sending.issue_editions import (
    IssueEditions,
    content_hash,
    issue_editions,
    render_editions,
)
from comms.sending.rules import Facts, Refusal, Request, judge, require
from comms.sending.run import Builder, Opener, Progress, Run, SendOptions

log = logging.getLogger("comms.outbox")


@dataclass
class SendReport:
    """What a run did and what is left."""

    campaign: Campaign
    counts: dict[str, int]
    done_now: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None
    next_attempt: datetime | None = None
    resumed: int = 0
    #: Every delivery was final already, so no run started.
    idle: bool = False
    #: Why the web archive could not be brought up to date before the first mail, if it could not.
    archive_problem: str | None = None
    #: Deliveries of this run failed because no message could be built or carried for the
    #: address (invalid, or UTF-8 for a server without SMTPUTF8); see `comms status ISSUE`.
    unsendable: int = 0
    #: The run was ended from outside (a signal, the scheduler's shutdown): the messages in
    #: flight were recorded and every other claimed row handed back.
    interrupted: bool = False

    @property
    def waiting(self) -> int:
        """Deliveries that wait for a later run."""
        return waiting(self.counts)

    @property
    def exit_code(self) -> int:
        """1 when stopped, 3 when some deliveries wait for a retry, else 1 when some could not
        be sent at all (a send that silently skipped people is no success), else 0."""
        if self.stopped:
            return 1
        if self.waiting:
            return 3
        return 1 if self.unsendable else 0


class CampaignChanged(CommsError):
    """The issue's content changed after its campaign started."""


def prepare(
    store: Store,
    slug: str,
    fingerprint: str,
    topics: list[str],
    regions: list[str],
    force: bool = False,
    editions: Editions | None = None,
) -> tuple[Campaign, bool]:
    """The campaign of an issue: started now (recipients snapshotted) or the existing one.

    Refuses to go on with content that differs from what the first recipients got, unless
    `force` is given.
    """
    now = now_utc()
    ledger = store.ledger
    found = ledger.campaign(slug)
    if found is None:
        found, created = ledger.start(slug, fingerprint, topics, regions, now, editions)
        if created:
            return found, True
    if found.content_hash != fingerprint:
        if not force:
            sent = ledger.counts(found.id).get(DeliveryStatus.SENT, 0)
            raise CampaignChanged(
                f"issue '{slug}' changed after sending started ({sent} already sent); "
                "check the change, then run again with --force to send the new version "
                "to the rest"
            )
        ledger.update_campaign(found.id, now, content_hash=fingerprint)
    return found, False


def send(
    store: Store,
    campaign: Campaign,
    build: Builder,
    opener: Opener,
    options: SendOptions,
    progress: Progress | None = None,
) -> SendReport:
    """Send every due delivery of a campaign; resume rows a crashed run left behind."""
    ledger = store.ledger
    what = f"send {campaign.slug}"

    def begin() -> int:
        now = options.clock()
        resumed = ledger.release_orphans(campaign.id, is_abandoned, now)
        ledger.update_campaign(campaign.id, now, status=CampaignStatus.SENDING)
        return resumed

    resumed = patiently(what, begin, options.stop)
    run = Run(ledger, campaign, build, opener, options, progress)
    done = run.execute()

    def end() -> SendReport:
        counts = ledger.counts(campaign.id)
        left = waiting(counts)
        if run.paused:
            status = CampaignStatus.PAUSED
        else:
            status = CampaignStatus.WAITING if left else CampaignStatus.DONE
        ledger.update_campaign(campaign.id, options.clock(), status=status)
        final = ledger.campaign(campaign.slug)
        assert final is not None
        return SendReport(
            campaign=final,
            counts=counts,
            done_now=done,
            stopped=run.stopped,
            next_attempt=ledger.next_attempt(campaign.id) if left else None,
            resumed=resumed + run.keeper.taken_over,
            unsendable=run.unsendable,
            interrupted=run.interrupted,
        )

    # The run is over: its end is recorded when the database answers, unless a stop comes
    # first (then Stopped: the claims are handed back or expire, and the next run resumes).
    return patiently(what, end, options.stop)


def issue_parts(
    config: Config, store: Store, site: Site, issue: Issue
) -> tuple[RenderedIssue, MessageFactory, str]:
    """Render an issue once: the rendering, its message factory and its fingerprint."""
    rendered = render_issue(config, site, issue)
    factory = MessageFactory(config, rendered, store.secret)
    return rendered, factory, content_hash(rendered.subject, rendered.html, rendered.text)


def opener_for(config: Config) -> Opener:
    """A transport factory for the configured URL; checks the URL at once (ConfigError)."""
    url = config.transport_url
    open_transport(url, config).close()
    return lambda: open_transport(url, config)


def waiting(counts: dict[str, int]) -> int:
    """Deliveries of a campaign that are not final yet (queued, ambiguous or being sent)."""
    return sum(counts.get(s, 0) for s in WAITING)


@dataclass(frozen=True)
class SendPlan:
    """What a send of an issue has to do: its recipients and how many messages are left."""

    issue: Issue
    recipients: int
    todo: int
    #: The campaign existed already (a resumed send).
    started: bool
    options: SendOptions
    #: Messages left per edition language ("" for deliveries queued before editions).
    editions: dict[str, int] = field(default_factory=dict)

    @property
    def batches(self) -> int:
        """How many claims the run makes."""
        return -(-self.todo // self.options.claim_size)


@dataclass(frozen=True)
class Proofs:
    """Proofs of an issue to a few addresses, outside the list and the ledger."""

    issue: Issue
    addresses: tuple[str, ...]
    #: What was recorded of each proof that went out (where, which version, when).
    records: tuple[ProofRecord, ...]


def plan_send(config: Config, store: Store, issue: Issue, options: SendOptions) -> SendPlan:
    """What sending `issue` now would do: its recipients, or what its campaign has left."""
    ledger = store.ledger
    campaign = ledger.campaign(issue.slug)
    if campaign is None:
        count = ledger.count_recipients(issue.topics, issue.regions)
        per = ledger.recipients_by_edition(issue.topics, issue.regions, site_editions(config))
        return SendPlan(issue, count, count, False, options, per)
    todo = waiting(ledger.counts(campaign.id))
    per = ledger.deliveries_by_edition(campaign.id, WAITING)
    return SendPlan(issue, campaign.recipients, todo, True, options, per)


def send_proofs(
    config: Config,
    store: Store,
    site: Site,
    issue: Issue,
    addresses: Sequence[str],
    *,
    languages: Sequence[str] = (),
    by: str | None = None,
    on_proof: Callable[[ProofRecord], None] | None = None,
) -> Proofs:
    """Send a proof of `issue` (any status) in each edition of `languages` (default: the
    site's) to each of `addresses` (normalised), outside the list and the ledger, and record
    each: where it went, which version and edition, when, `by` whom. `on_proof` hears each
    proof that went out. A language the site offers no edition in is a CommsError."""
    offered = site_editions(config)
    unknown = [lang for lang in languages if lang not in offered.languages]
    if unknown:
        raise CommsError(
            f"no edition in {', '.join(unknown)}; the site offers "
            f"{', '.join(offered.languages)} (or all)"
        )
    rendered = render_editions(config, site, issue)
    version = version_of(rendered, issue)
    factories = {
        lang: MessageFactory(config, rendered[lang], store.secret)
        for lang in (languages or [offered.home.language])
    }
    desk = Desk(store.engine)
    url = config.transport_url
    transport = open_transport(url, config)
    records = []
    try:
        for language, factory in factories.items():
            for email in addresses:
                at = now_utc()
                message = proof_message(config, factory, email, version.digest, at)
                if language != offered.home.language:  # beside the site's, not over it
                    message = message._replace(key=f"{message.key}.{language}")
                transport.send(message.envelope_from, message.recipient, message.data, message.key)
                where = destination(transport, url, message.key)
                record = ProofRecord(
                    issue.slug, version.digest, email, where, who(by), at, language
                )
                desk.record_proof(record)
                records.append(record)
                if on_proof is not None:
                    on_proof(record)
    finally:
        transport.close()
    return Proofs(issue, tuple(addresses), tuple(records))


@dataclass(frozen=True)
class Cleared:
    """An issue the send rules let through, with every edition rendered once for the send."""

    issue: Issue
    editions: IssueEditions


def _facts(
    config: Config,
    store: Store,
    site: Site,
    errors: list[ContentError],
    issue: Issue,
    version: Callable[[], Version | None],
) -> Facts:
    started = store.ledger.campaign(issue.slug) is not None
    return Facts(config, site, errors, Desk(store.engine), started, version)


def refusal(
    config: Config, store: Store, site: Site, errors: list[ContentError], request: Request
) -> Refusal | None:
    """Why the send rules refuse `request`, or None: for `comms status` and `comms schedule`,
    which send nothing (every edition is rendered, if the approval rule asks)."""
    issue = request.issue
    version = partial(current_version, config, site, issue)
    return judge(request, _facts(config, store, site, errors, issue, version))


def clear(
    config: Config, store: Store, site: Site, errors: list[ContentError], request: Request
) -> Cleared:
    """Ask the send rules about `request`; raise NotSendable with the first refusal.

    `errors` are the problems `read_site` found. Every edition is rendered once, for the
    approval (which covers every edition, `comms approve`) and for the send.
    """
    issue = request.issue
    rendered: list[IssueEditions] = []

    def editions() -> IssueEditions:
        if not rendered:
            rendered.append(issue_editions(config, site, issue, store.secret))
        return rendered[0]

    def version() -> Version:
        return version_of(editions().rendered, issue)

    # The gate comes before the approval: an issue with errors may not even render.
    require(request, _facts(config, store, site, errors, issue, version))
    return Cleared(issue, editions())


def send_to_list(
    config: Config,
    store: Store,
    cleared: Cleared,
    options: SendOptions,
    *,
    force: bool = False,
    on_start: Callable[[SendPlan], Progress | None] | None = None,
) -> SendReport:
    """Enqueue (or resume) and send a cleared issue: `comms send`, the demo, the scheduler.

    `force` goes on although the issue changed after its campaign started; `on_start` hears
    the plan just before the run and may return a progress callback. Nothing is run when every
    delivery is final.
    """
    issue, editions = cleared.issue, cleared.editions
    opener = opener_for(config)
    what = f"send {issue.slug}"

    def start() -> tuple[Campaign, bool, dict[str, int]]:
        campaign, new = prepare(
            store,
            issue.slug,
            editions.fingerprint,
            issue.topics,
            issue.regions,
            force,
            editions.offered,
        )
        return campaign, new, store.ledger.counts(campaign.id)

    campaign, new, counts = patiently(what, start, options.stop)
    todo = waiting(counts)
    if not todo:
        return SendReport(campaign=campaign, counts=counts, idle=True)
    # The mails link to the issue's web page ("Im Browser ansehen"): it exists before the first.
    problem = patiently(what, partial(_publish, config, store), options.stop) if new else None
    plan = SendPlan(issue, campaign.recipients, todo, not new, options)
    progress = on_start(plan) if on_start is not None else None
    report = send(store, campaign, editions.build, opener, options, progress)
    return replace(report, archive_problem=problem)


def _publish(config: Config, store: Store) -> str | None:
    """Bring the web archive up to date with the issues sent so far; why not, if it failed."""
    try:
        publish_now(config, DbPublishState.of(store.engine), tell_hubs=True)
    except ContentErrors as exc:
        return (
            f"the web archive was not rebuilt: {len(exc.errors)} content error(s) in other "
            "files (see `comms check`); the issue's web page appears with the next build"
        )
    except (CommsError, OSError) as exc:
        return f"the web archive was not rebuilt: {exc}"
    return None


def retry_due(
    config: Config,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    on_start: Callable[[SendPlan], Progress | None] | None = None,
) -> list[SendReport]:
    """Send every campaign's due retries (the scheduler, `comms worker`); one report per
    campaign. `on_start` hears each campaign's plan, as in `send_to_list`."""
    what = "retry pass"
    store = patiently(what, partial(open_store, config), stop)
    try:
        slugs = patiently(what, lambda: store.ledger.due_campaigns(now or now_utc()), stop)
        if not slugs:
            return []
        site, _ = read_site(config)
        options = replace(SendOptions.of(config.settings.delivery), stop=stop)
        if now is not None:
            options = replace(options, clock=lambda: now)
        reports = []
        for slug in slugs:
            if stop is not None and stop.is_set():
                break  # asked to stop: the other campaigns wait for the next pass
            issue = site.issues.get(slug)
            if issue is None:
                continue  # the issue's file is gone: its rows wait until it is back
            # Not `clear`: the retries of a started campaign go on by themselves.
            cleared = Cleared(issue, issue_editions(config, site, issue, store.secret))
            try:
                reports.append(send_to_list(config, store, cleared, options, on_start=on_start))
            except CampaignChanged as exc:
                # One edited issue must not hold up the retries of every other campaign; its
                # rows wait for an editor's `comms send ISSUE --force`.
                log.error("retry pass: %s: %s", slug, exc)
        return reports
    finally:
        store.close()
