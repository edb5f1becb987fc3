"""The report of one issue: whom it reached (per edition, region and topic), what became of
its deliveries, bounces, complaints and unsubscribes through its links, how long the send took,
and how often its archive page was read. Every figure is a count; none names a person."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from comms.core.config import Config
from comms.core.errors import CommsError
from comms.db.figures import DayCount, IssueFigures, issue_figures
from comms.db.status import DeliveryStatus
from comms.reports.clicks import Clicks, shown_clicks

#: The key of "no choice" (every region, every topic) in the reach tables.
NO_CHOICE = ""


@dataclass(frozen=True)
class IssueReport:
    """One issue's figures, ready to print or serialise."""

    figures: IssueFigures
    #: Clicks per link id, only those at or above the minimum: id → (URL, count).
    clicks: dict[str, tuple[str, int]]

    @property
    def slug(self) -> str:
        """The issue's slug."""
        return self.figures.campaign.slug

    def count(self, status: DeliveryStatus) -> int:
        """Deliveries in `status`."""
        return self.figures.statuses.get(status, 0)

    def reach(self, dimension: str) -> dict[str, int]:
        """Recipients per edition, region or topic (`editions`, `regions`, `topics`); a person
        with several regions or topics counts in each, one with none under ''."""
        tally: Counter[str] = Counter()
        for row in self.figures.reach:
            if dimension == "editions":
                values: tuple[str, ...] = (row.edition or NO_CHOICE,)
            else:
                values = getattr(row, dimension) or (NO_CHOICE,)
            for value in values:
                tally[value] += row.recipients
        return dict(sorted(tally.items(), key=lambda item: (-item[1], item[0])))

    @property
    def duration_seconds(self) -> float | None:
        """From the campaign's start to its last accepted message (None before the first)."""
        if self.figures.last_sent is None:
            return None
        return max(0.0, (self.figures.last_sent - self.figures.campaign.created_at).total_seconds())

    @property
    def rate_per_minute(self) -> float | None:
        """Messages accepted per minute over the send's duration."""
        seconds = self.duration_seconds
        if not seconds:
            return None
        return round(self.count(DeliveryStatus.SENT) * 60 / seconds, 1)

    def counted(self, kind: str) -> list[DayCount]:
        """The daily counters of one kind (`view`, `unsubscribe`)."""
        return [c for c in self.figures.counters if c.kind == kind]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data (dates as `date`/`datetime`; the CLI writes them ISO 8601)."""
        f = self.figures
        views = self.counted("view")
        return {
            "issue": self.slug,
            "status": f.campaign.status,
            "recipients": f.campaign.recipients,
            "delivered": self.count(DeliveryStatus.SENT),
            "deferred": f.deferred,
            "failed": self.count(DeliveryStatus.FAILED),
            "skipped": self.count(DeliveryStatus.SKIPPED),
            "statuses": {status: f.statuses.get(status, 0) for status in DeliveryStatus},
            "bounced": {"hard": f.feedback.get("hard", 0), "soft": f.feedback.get("soft", 0)},
            "complaints": f.feedback.get("complaint", 0),
            "unsubscribes": sum(c.count for c in self.counted("unsubscribe")),
            "provider_unsubscribes": f.feedback.get("unsubscribe", 0),
            "reach": {d: self.reach(d) for d in ("editions", "regions", "topics")},
            "send": {
                "started": f.campaign.created_at,
                "last_sent": f.last_sent,
                "last_change": f.last_change,
                "duration_seconds": self.duration_seconds,
                "rate_per_minute": self.rate_per_minute,
            },
            "views": {
                "total": sum(c.count for c in views),
                "per_day": [{"day": c.day, "edition": c.item, "count": c.count} for c in views],
            },
            "clicks": [
                {"link": link, "url": url, "count": n} for link, (url, n) in self.clicks.items()
            ],
        }

    def lines(self, config: Config) -> list[str]:
        """The report for a terminal, with the configured names of regions and topics."""
        data = self.to_json()
        names = {"regions": config.settings.regions, "topics": config.settings.topics}
        send = data["send"]
        lines = [
            f"{self.slug}: {data['status']}, {data['recipients']} recipient(s)",
            f"  delivered {data['delivered']}, deferred {data['deferred']}, "
            f"failed {data['failed']}, skipped {data['skipped']}",
            f"  bounced: {data['bounced']['hard']} hard, {data['bounced']['soft']} soft; "
            f"complaints {data['complaints']}; unsubscribes through its links "
            f"{data['unsubscribes']} (provider: {data['provider_unsubscribes']})",
        ]
        if send["duration_seconds"] is not None:
            lines.append(
                f"  send: started {_when(send['started'])}, last message "
                f"{_when(send['last_sent'])}, {_duration(send['duration_seconds'])}, "
                f"{send['rate_per_minute'] or 0} per minute"
            )
        dimensions = (("editions", "edition"), ("regions", "region"), ("topics", "topic"))
        for dimension, label in dimensions:
            table = names.get(dimension, {})
            parts = [
                f"{table.get(value, value) or 'all'} {n}"
                for value, n in data["reach"][dimension].items()
            ]
            lines.append(f"  per {label}: {', '.join(parts) or '-'}")
        days: Counter[date] = Counter()
        for row in data["views"]["per_day"]:
            days[row["day"]] += row["count"]
        per_day = ", ".join(f"{day.isoformat()} {n}" for day, n in sorted(days.items()))
        views = f"  archive page views: {data['views']['total']}"
        lines.append(views + (f" ({per_day})" if per_day else ""))
        for click in data["clicks"]:
            lines.append(f"  clicks {click['count']}: {click['url']}")
        return lines


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def issue_report(engine: Engine, slug: str, clicks: Clicks | None = None) -> IssueReport:
    """The report of the issue `slug`; CommsError when it was never sent. With `clicks`, the
    links clicked at least `comms.reports.clicks.MINIMUM` times, with their URLs."""
    figures = issue_figures(engine, slug)
    if figures is None:
        raise CommsError(f"issue '{slug}' was never sent: there is nothing to report yet")
    links = clicks.links(slug) if clicks is not None else {}
    return IssueReport(figures, shown_clicks(links, figures.counters))
