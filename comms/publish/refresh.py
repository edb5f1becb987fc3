"""Publish now: build the site as it is published, write only what changed, tell WebSub hubs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from comms.content.models import Site
from comms.content.site import load_valid_site
from comms.content.urls import Urls
from comms.core.collector import batch
from comms.core.config import Config
from comms.publish import build, build_record, feeds
from comms.publish.page_cache import PageCache
from comms.publish.producer import Build
from comms.publish.state import OneBuild, PublishState

# A build that tells no hub does not import the HTTP client (a twentieth of a second).
if TYPE_CHECKING:
    import requests

#: Seconds to connect and to read the hub's answer.
TIMEOUT = (5.0, 15.0)
ATTEMPTS = 3
BACKOFF = 0.5


@dataclass(frozen=True)
class Ping:
    """One publish notification: which hub, which feed, and whether the hub took it."""

    hub: str
    topic: str
    ok: bool
    detail: str


@dataclass
class Publication:
    """What publishing now built and wrote, which feeds it changed and whom it told."""

    #: The site as built: the content with the issues that count as sent (`site.sent`).
    site: Site
    write: build.WriteReport
    #: The absolute URLs of the feeds whose bytes changed.
    changed_feeds: list[str]
    pings: list[Ping] = field(default_factory=list)

    @property
    def failed(self) -> list[Ping]:
        """The notifications no hub accepted (kept for the next refresh)."""
        return [p for p in self.pings if not p.ok]


def notify_hub(
    session: requests.Session,
    hub: str,
    topic: str,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> Ping:
    """POST `hub.mode=publish&hub.url=<topic>`; retry timeouts, 5xx and 429 with backoff."""
    import requests

    detail = ""
    for attempt in range(attempts):
        if attempt:
            sleep(BACKOFF * 2 ** (attempt - 1))
        try:
            response = session.post(
                hub, data={"hub.mode": "publish", "hub.url": topic}, timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"
            continue
        if 200 <= response.status_code < 300:
            return Ping(hub, topic, True, f"HTTP {response.status_code}")
        detail = f"HTTP {response.status_code}"
        if response.status_code < 500 and response.status_code != 429:
            break  # the hub refuses this request; asking again will not help
    return Ping(hub, topic, False, detail)


def notify(
    hubs: Iterable[str], topics: Iterable[str], pending: Iterable[tuple[str, str]] = ()
) -> list[Ping]:
    """Notify every hub of every topic, plus earlier failures; one POST per (hub, topic).

    A hub that stays unreachable or overloaded (after retries) is not asked about the other
    topics in this run: they are reported as failed and wait for the next refresh.
    """
    pairs = sorted({(hub, topic) for hub in hubs for topic in topics} | set(pending))
    if not pairs:  # nothing to tell: no HTTP client to import (every send's publish asks)
        return []
    import requests

    pings: list[Ping] = []
    down: dict[str, str] = {}
    with requests.Session() as session:
        for hub, topic in pairs:
            if hub in down:
                pings.append(Ping(hub, topic, False, f"not sent: {down[hub]}"))
                continue
            ping = notify_hub(session, hub, topic)
            if not ping.ok and not ping.detail.startswith("HTTP 4"):
                down[hub] = f"the hub failed with {ping.detail.split(':')[0]}"
            pings.append(ping)
    return pings


@batch()
def publish_now(
    config: Config,
    state: PublishState,
    site: Site | None = None,
    *,
    out_dir: Path | None = None,
    tell_hubs: bool = False,
    stamps: build_record.Stamps | None = None,
) -> Publication:
    """Build the site as it is published now and write the files whose bytes changed.

    The one way every caller publishes (`comms build`, `refresh`, `serve`, `demo`, the preview,
    the scheduler's refresh job, the follower, a send): the site is the content folder's (bad
    content raises InvalidContent, and nothing is written) unless the caller read `site` itself;
    either way its `sent` issues are set here to the ones `state` names (the send ledger) and,
    with `delivery.require_approval`, scheduled issues wait for their send (`public_on_send`);
    `state` keeps the feed history, so every host writes the same bytes. The files go to
    `out_dir` (default: the output folder). With `tell_hubs` the WebSub hubs hear of every
    changed feed, and of the notifications earlier runs could not deliver (`state` queues
    those that fail again). `stamps` (`build_record.take_stamps`, taken before `site` was
    read) go into the build's record, so that the next build with the same can be skipped
    before it reads anything.
    """
    if site is None:
        site, _ = load_valid_site(config)
    state = OneBuild(state)
    site.sent = state.sent_issues()
    # The archive waits for the approval: a scheduled issue is public once its send starts.
    site.public_on_send = config.settings.delivery.require_approval
    target = out_dir or config.output_dir
    manifest = target / build.MANIFEST
    with build_record.building(config, target):
        digest = build_record.inputs(config, site, state)
        same = build_record.unchanged(config, target, manifest, digest)
        if same is not None:
            # Nothing the build reads has changed since it wrote this folder: same bytes.
            write = build.WriteReport(unchanged=sorted(same))
            build_record.restamp(config, target, manifest, stamps, state=state)
        else:
            files = build.collect(Build(config, site, state))
            workers = config.settings.render.workers
            cache = PageCache(config, target)
            write = build.write_output(target, files, cache, workers)
            # Recorded with the feed history as this build left it: a build that starts from
            # it observes nothing new, so it makes the same bytes.
            digest = build_record.inputs(config, site, state)
            valid = build_record.until(config, site, state)
            build_record.remember(
                config, target, manifest, digest, valid, stamps, cache.stamps(), state=state
            )
    changed = [Urls(config).absolute(path) for path in write.written if feeds.is_feed(path)]
    published = Publication(site, write, changed)
    if tell_hubs:
        published.pings = _tell_hubs(config, state, changed)
    return published


def _tell_hubs(config: Config, state: PublishState, changed: list[str]) -> list[Ping]:
    """Notify the hubs of `changed` and of the queued failures; queue what fails again."""
    hubs = config.settings.feeds.hubs
    pending = {pair for pair in state.pending_pings() if pair[0] in hubs}
    pings = notify(hubs, changed, pending)
    # Another refresh (the refresh job, a send, the follower) may have queued failures of its
    # own meanwhile: keep those, drop what this one delivered, add what it could not.
    with build.output_lock(config.output_dir):
        delivered = {(p.hub, p.topic) for p in pings if p.ok}
        failed = {(p.hub, p.topic) for p in pings if not p.ok}
        queued = {pair for pair in state.pending_pings() if pair[0] in hubs}
        state.set_pending_pings((queued - delivered) | failed)
    return pings
