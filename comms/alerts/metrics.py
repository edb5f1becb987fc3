"""`/metrics` for operators: the database's gauges in the Prometheus text format, behind a
bearer token (`COMMS_METRICS_TOKEN`).

A custom Collector reads the database at every scrape (`comms.db.gauges`), so every host shows
the same figures and nothing is kept between scrapes. The send rate is the last minute's,
from the ledger; Prometheus may also take `rate(comms_deliveries{status="sent"}[5m])`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.engine import Engine

from comms.core.clock import now_utc
from comms.core.config import Config
from comms.db.gauges import Finished, read_gauges


class LedgerCollector(Collector):
    """The gauges of one database, read when Prometheus scrapes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.finished = Finished()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Every metric family, from one read of the database."""
        g = read_gauges(self.engine, now_utc(), self.finished)
        deliveries = GaugeMetricFamily(
            "comms_deliveries", "Deliveries by campaign and status.", labels=["issue", "status"]
        )
        rate = GaugeMetricFamily(
            "comms_send_rate", "Messages sent per second over the last minute.", labels=["issue"]
        )
        depth = GaugeMetricFamily(
            "comms_queue_depth", "Deliveries not yet settled (queued, retrying, being sent).",
            labels=["issue"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "comms_oldest_queued_age_seconds",
            "Seconds the oldest unsettled delivery of a campaign has waited.",
            labels=["issue"],
        )
        for c in g.campaigns:
            for status, count in c.counts.items():
                deliveries.add_metric([c.slug, status], count)
            rate.add_metric([c.slug], c.rate)
            depth.add_metric([c.slug], c.depth)
            oldest.add_metric([c.slug], c.oldest)
        yield from (deliveries, rate, depth, oldest)
        people = GaugeMetricFamily("comms_subscribers", "People by status.", labels=["status"])
        for status, count in sorted(g.subscribers.items()):
            people.add_metric([status], count)
        yield people
        yield GaugeMetricFamily(
            "comms_signups_24h", "Sign-up requests within the last 24 hours.",
            g.consent.get("request", 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "comms_confirmations_24h", "Confirmed sign-ups within the last 24 hours.",
            g.consent.get("confirm", 0),
        )  # fmt: skip
        bounces = GaugeMetricFamily(
            "comms_bounce_events", "Bounce reports and complaints by kind.", labels=["kind"]
        )
        for kind, count in sorted(g.bounces.items()):
            bounces.add_metric([kind], count)
        yield bounces
        holder = GaugeMetricFamily(
            "comms_scheduler_lease", "1 for the process holding the scheduler lease.",
            labels=["owner"],
        )  # fmt: skip
        if g.lease_owner is not None:
            holder.add_metric([g.lease_owner], 1)
        yield holder
        if g.last_refresh is not None:
            yield GaugeMetricFamily(
                "comms_last_refresh_timestamp_seconds",
                "When the scheduler last refreshed the feeds (Unix time).",
                g.last_refresh.timestamp(),
            )


@dataclass(frozen=True)
class Answer:
    """What `/metrics` answers: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class MetricsEndpoint:
    """`/metrics`: 404 without a configured token (metrics off), 401 without a bearer token,
    403 with a wrong one, else the metrics."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self.token = config.settings.metrics.token
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(LedgerCollector(engine))

    @property
    def enabled(self) -> bool:
        """Whether `/metrics` exists."""
        return bool(self.token)

    def answer(self, authorization: str | None) -> Answer:
        """The response to a scrape with this `Authorization` header."""
        if not self.token:
            return Answer(404, b"not found\n")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            challenge = {"WWW-Authenticate": 'Bearer realm="comms metrics"'}
            return Answer(401, b"a bearer token is required\n", headers=challenge)
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return Answer(403, b"wrong token\n")
        return Answer(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
