"""Sending a campaign: claim batches, send over N connections at a rate, retry, resume."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

from comms.content.models import Issue, Site
from comms.content.reader import read_content
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.core.process import is_abandoned
from comms.db.ledger import Campaign
from comms.db.status import WAITING, CampaignStatus, DeliveryStatus
from comms.db.subscribers import Store, open_store
from comms.mail.message import MessageFactory
from comms.mail.transports import open_transport
from comms.publish.render import RenderedIssue, render_issue
from comms.sending.run import (
    BOUNCE_BREAKER,
    IN_RUN_MAX_WAIT,
    Builder,
    Opener,
    Progress,
    Run,
    SendOptions,
)
from comms.sending.throttle import TokenBucket

# The run machinery lives in `comms.sending.run`; its public names stay importable from here.
__all__ = [
    "BOUNCE_BREAKER",
    "IN_RUN_MAX_WAIT",
    "Builder",
    "CampaignChanged",
    "Opener",
    "Progress",
    "SendOptions",
    "SendReport",
    "TokenBucket",
    "content_hash",
    "issue_parts",
    "opener_for",
    "prepare",
    "retry_due",
    "send",
    "send_issue",
]

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

    @property
    def waiting(self) -> int:
        """Deliveries that wait for a later run."""
        return sum(self.counts.get(s, 0) for s in WAITING)

    @property
    def exit_code(self) -> int:
        """1 when stopped, 3 when some deliveries wait for a retry, 0 when all are final."""
        if self.stopped:
            return 1
        return 3 if self.waiting else 0


class CampaignChanged(CommsError):
    """The issue's content changed after its campaign started."""


def content_hash(subject: str, html: str, text: str) -> str:
    """A fingerprint of what a campaign sends."""
    digest = hashlib.sha256()
    for part in (subject, html, text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def prepare(
    store: Store,
    slug: str,
    fingerprint: str,
    topics: list[str],
    regions: list[str],
    force: bool = False,
) -> tuple[Campaign, bool]:
    """The campaign of an issue: started now (recipients snapshotted) or the existing one.

    Refuses to go on with content that differs from what the first recipients got, unless
    `force` is given.
    """
    now = now_utc()
    ledger = store.ledger
    found = ledger.campaign(slug)
    if found is None:
        return ledger.enqueue(slug, fingerprint, topics, regions, now), True
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
    now = options.clock()
    resumed = ledger.release_orphans(campaign.id, is_abandoned, now)
    ledger.update_campaign(campaign.id, now, status=CampaignStatus.SENDING)
    run = Run(ledger, campaign, build, opener, options, progress)
    done = run.execute()
    counts = ledger.counts(campaign.id)
    waiting = sum(counts.get(s, 0) for s in WAITING)
    if run.paused:
        status = CampaignStatus.PAUSED
    else:
        status = CampaignStatus.WAITING if waiting else CampaignStatus.DONE
    ledger.update_campaign(campaign.id, options.clock(), status=status)
    final = ledger.campaign(campaign.slug)
    assert final is not None
    return SendReport(
        campaign=final,
        counts=counts,
        done_now=done,
        stopped=run.stopped,
        next_attempt=ledger.next_attempt(campaign.id) if waiting else None,
        resumed=resumed,
    )


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


def send_issue(
    config: Config, store: Store, site: Site, issue: Issue, options: SendOptions
) -> SendReport:
    """Render, enqueue (or resume) and send one issue: what `comms send ISSUE` does."""
    _, factory, fingerprint = issue_parts(config, store, site, issue)
    opener = opener_for(config)
    campaign, _ = prepare(store, issue.slug, fingerprint, issue.topics, issue.regions)
    return send(store, campaign, factory.build, opener, options)


def retry_due(
    config: Config, now: datetime | None = None, stop: threading.Event | None = None
) -> list[SendReport]:
    """Send every campaign's due retries (for the scheduler); one report per campaign."""
    store = open_store(config)
    try:
        slugs = store.ledger.due_campaigns(now or now_utc())
        if not slugs:
            return []
        settings = config.settings
        site, _ = read_content(config.content_dir, config.tz, settings.regions, settings.topics)
        options = replace(SendOptions.from_config(config), stop=stop)
        if now is not None:
            options = replace(options, clock=lambda: now)
        reports = []
        for slug in slugs:
            issue = site.issues.get(slug)
            if issue is None:
                continue  # the issue's file is gone: its rows wait until it is back
            try:
                reports.append(send_issue(config, store, site, issue, options))
            except CampaignChanged as exc:
                # One edited issue must not hold up the retries of every other campaign; its
                # rows wait for an editor's `comms send ISSUE --force`.
                log.error("retry pass: %s: %s", slug, exc)
        return reports
    finally:
        store.close()
