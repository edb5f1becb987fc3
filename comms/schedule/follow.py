"""A web-only `comms serve` keeps its own output folder as current as the scheduler's host."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from comms.core.config import Config
from comms.core.errors import ContentErrors
from comms.db.outage import noted
from comms.db.publishing import DbPublishState
from comms.publish.feed_state import issue_is_public
from comms.publish.refresh import publish_now

log = logging.getLogger("comms.schedule")


class Follower:
    """Keeps this host's output folder as current as what any host publishes.

    Each `beat` reads the issues whose campaign has started (one small query): when that set
    changed (a send on another host made an issue public) it rebuilds at once. While another
    process runs the scheduler (`beat(scheduling=False)`) it also rebuilds every
    `schedule.refresh_minutes`, as the refresh job does there, so that time-based changes (an
    event that became past, a `send_at` that passed) appear here too; and it tells no hub (the
    scheduler's host does). On the scheduler's host (`scheduling=True`) the refresh job does
    the periodic rebuilds, and a rebuild here tells the hubs of the feeds it changed: whichever
    of this, the refresh job or a send's own rebuild writes a feed first is the one that
    notices the change. The feed history is the database's, so all hosts write the same bytes.
    """

    def __init__(
        self, config: Config, engine: Engine, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config, self.clock = config, clock
        self.state = DbPublishState.of(engine)
        #: What the last attempt saw; None until then, so that the first beat builds.
        self.sent: frozenset[str] | None = None
        self.public: frozenset[str] | None = None
        self.tried_at = -math.inf

    def beat(self, scheduling: bool = False) -> bool:
        """Rebuild if what is published changed or the refresh interval passed; True if it
        wrote. `scheduling`: this process runs the scheduler (see the class). Never raises:
        problems are logged, and the output folder stays as it was."""
        try:
            sent = self.state.sent_issues()
        except Exception as exc:  # a database hiccup: the next beat asks again
            if not noted("output follow", exc):
                log.exception("output follow: cannot read the started campaigns")
            return False
        every = math.inf if scheduling else self.config.settings.schedule.refresh_minutes * 60
        if sent == self.sent and self.clock() - self.tried_at < every:
            return False
        try:
            published = publish_now(self.config, self.state, tell_hubs=scheduling)
        except ContentErrors as exc:
            # Like the refresh job: said once per change or interval, not at every beat.
            self.sent, self.tried_at = sent, self.clock()
            log.error(
                "output not rebuilt: %s (see `comms check`); serving the last good output", exc
            )
            return False
        except Exception as exc:  # the database or the disk: try again at the next beat
            if not noted("output follow", exc):
                log.exception("output not rebuilt; trying again at the next beat")
            return False
        for ping in published.failed:
            log.warning("WebSub hub %s: %s (retried at the next refresh)", ping.hub, ping.detail)
        site, report = published.site, published.write
        now = self.config.now()
        public = frozenset(
            slug for slug, issue in site.issues.items() if issue_is_public(issue, site, now)
        )
        if self.public is None:
            news = f"{len(public)} issue(s) public"
        else:
            news = f"issues now public: {', '.join(sorted(public - self.public)) or 'none new'}"
        # What the build read, not the beat: a send between the two is built already.
        self.sent, self.public, self.tried_at = site.sent, public, self.clock()
        log.info(
            "output rebuilt: %d written, %d unchanged, %d removed (%s)",
            len(report.written),
            len(report.unchanged),
            len(report.removed),
            news,
        )
        return True
