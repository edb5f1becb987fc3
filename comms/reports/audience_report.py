"""The audience report: sign-ups, confirmations, unsubscribes, bounces and erasures per month;
who is subscribed now per region, topic and language; the confirmation rate. Counts only:
its CSV holds no personal data and needs no protected file mode."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from comms.core.config import Config
from comms.db.figures import AudienceFigures, Share, audience_figures

#: The monthly columns: (JSON and CSV name, consent-ledger action or counter).
MONTHLY = (
    ("signups", "request"),
    ("confirmations", "confirm"),
    ("imports", "import"),
    ("unsubscribes", "unsubscribe"),
    ("bounces", "bounce"),
    ("complaints", "complaint"),
    ("erasures", "erasure"),
)


@dataclass(frozen=True)
class AudienceReport:
    """The audience between two days (both counted)."""

    start: date
    end: date
    figures: AudienceFigures

    def months(self) -> list[dict[str, Any]]:
        """One row per month of the period (months without events too), oldest first."""
        rows = []
        month = date(self.start.year, self.start.month, 1)
        while month <= self.end:
            key = f"{month.year:04d}-{month.month:02d}"
            counted = self.figures.months.get(key, {})
            rows.append({"month": key} | {name: counted.get(a, 0) for name, a in MONTHLY})
            month = (month + timedelta(days=32)).replace(day=1)
        return rows

    @property
    def confirmation_rate(self) -> float | None:
        """Confirmations per sign-up request in the period (None without sign-ups)."""
        rows = self.months()
        signups: int = sum(r["signups"] for r in rows)
        confirmations: int = sum(r["confirmations"] for r in rows)
        return round(confirmations / signups, 3) if signups else None

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data."""

        def shares(values: list[Share]) -> dict[str, int]:
            return {s.value: s.count for s in values}

        return {
            "from": self.start,
            "to": self.end,
            "months": self.months(),
            "confirmation_rate": self.confirmation_rate,
            "subscribers": self.figures.statuses,
            "active": {
                "regions": shares(self.figures.regions),
                "topics": shares(self.figures.topics),
                "languages": shares(self.figures.languages),
            },
        }

    def lines(self, config: Config) -> list[str]:
        """The report for a terminal, with the configured names of regions and topics."""
        data = self.to_json()
        names: dict[str, dict[str, str]] = {
            "regions": config.settings.regions,
            "topics": config.settings.topics,
        }
        rate = data["confirmation_rate"]
        lines = [
            f"audience {self.start.isoformat()} – {self.end.isoformat()}",
            "  month    " + " ".join(f"{name:>13}" for name, _ in MONTHLY),
        ]
        for row in data["months"]:
            lines.append(f"  {row['month']}  " + " ".join(f"{row[n]:>13}" for n, _ in MONTHLY))
        lines.append("  confirmation rate: " + ("-" if rate is None else f"{rate * 100:.1f} %"))
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(data["subscribers"].items()))
        lines.append(f"  subscribers now: {statuses or '-'}")
        for dimension, counts in data["active"].items():
            table = names.get(dimension, {})
            parts = [f"{table.get(v, v) or 'all'} {n}" for v, n in counts.items()]
            lines.append(f"  active per {dimension[:-1]}: {', '.join(parts) or '-'}")
        return lines

    def csv_text(self) -> str:
        """The monthly figures as CSV (a header row, one row per month)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["month", *(name for name, _ in MONTHLY)])
        for row in self.months():
            writer.writerow([row["month"], *(row[name] for name, _ in MONTHLY)])
        return out.getvalue()

    def write_csv(self, path: Path) -> None:
        """Write `csv_text` to `path` (an ordinary file: it holds counts, no personal data)."""
        path.write_text(self.csv_text(), encoding="utf-8")


#: The longest period a report covers: it counts month by month.
MAX_YEARS = 50


def audience_report(engine: Engine, start: date, end: date) -> AudienceReport:
    """The audience report from `start` to `end` (both days counted, UTC); ValueError for a
    period that ends before it starts, is longer than MAX_YEARS or has no day after it."""
    if end < start:
        raise ValueError("the end of the period lies before its start")
    if end >= date.max or (end - start).days > MAX_YEARS * 366:
        raise ValueError(f"a period of at most {MAX_YEARS} years before the year 9999")
    since = datetime.combine(start, time(), UTC)
    until = datetime.combine(end + timedelta(days=1), time(), UTC)
    return AudienceReport(start, end, audience_figures(engine, since, until))
