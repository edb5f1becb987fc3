"""`comms refresh`: rebuild, write only what changed, and tell WebSub hubs which feeds changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests

from comms.content.models import Site
from comms.content.site import load_valid_site
from comms.content.urls import Urls
from comms.core.config import Config
from comms.publish import build, feeds
from comms.publish.state import FileState, PublishState

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
class RefreshReport:
    """What a refresh wrote and whom it notified."""

    write: build.WriteReport
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


def refresh(config: Config, site: Site, state: PublishState | None = None) -> RefreshReport:
    """Build everything, write the files whose bytes changed, notify hubs of changed feeds.

    `state` keeps the feed history and the failed notifications that the next refresh sends
    again (the database; by default the files under the config's folder).
    """
    state = state if state is not None else FileState(config.root)
    report = write_site(config, site, state)
    changed = [Urls(config).absolute(path) for path in report.written if feeds.is_feed(path)]
    hubs = config.settings.feeds.hubs
    pending = {pair for pair in state.pending_pings() if pair[0] in hubs}
    pings = notify(hubs, changed, pending)
    result = RefreshReport(write=report, changed_feeds=changed, pings=pings)
    # Another refresh (the refresh job, a send, the follower) may have queued failures of its
    # own meanwhile: keep those, drop what this one delivered, add what it could not.
    with build.output_lock(config.output_dir):
        delivered = {(p.hub, p.topic) for p in pings if p.ok}
        queued = {pair for pair in state.pending_pings() if pair[0] in hubs}
        state.set_pending_pings((queued - delivered) | {(p.hub, p.topic) for p in result.failed})
    return result


def refresh_content(
    config: Config, sent: frozenset[str] = frozenset(), state: PublishState | None = None
) -> RefreshReport:
    """Read the content folder, then refresh; bad content raises ContentErrors, writing nothing.

    The entry point for the scheduler's feed-refresh job and for a send that makes its issue
    public; `sent` names the issues whose mails have gone out (from the ledger); `state` keeps
    the feed history and the WebSub queue (see `refresh`).
    """
    return refresh(config, valid_site(config, sent), state)


def valid_site(config: Config, sent: frozenset[str] = frozenset()) -> Site:
    """The content folder's site with the issues whose mails have gone out; bad content raises
    ContentErrors."""
    site, _ = load_valid_site(config)
    site.sent = sent
    return site


def write_site(config: Config, site: Site, state: PublishState | None = None) -> build.WriteReport:
    """Build everything and write the files whose bytes changed into the output folder, telling
    no hub (a host that only follows what another host publishes; `refresh` tells them)."""
    return build.write_output(config.output_dir, build.collect(config, site, state))
