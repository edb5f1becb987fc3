"""Clicks counted per link and day, optional and off by default (`mail.count_clicks`): the
redirect `/r/<issue>/<link>` knows only the links of that issue's published mail, and a count
is shown only from `MINIMUM` on, so that a small group cannot be singled out."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.content.urls import item_path
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.languages import site_editions
from comms.db.counters import count_issue_event
from comms.db.figures import DayCount
from comms.mail.click_links import issue_links

log = logging.getLogger(__name__)

#: Counts below this are not shown (a click count of 2 in a small region names people).
MINIMUM = 5


class Clicks:
    """Where a counted link leads, and counting its clicks."""

    def __init__(self, config: Config, engine: Engine, secret: str) -> None:
        self.config = config
        self.engine = engine
        self.secret = secret

    @property
    def counting(self) -> bool:
        """Whether clicks are counted (`mail.count_clicks`)."""
        return self.config.settings.mail.count_clicks

    def _pages(self, slug: str) -> list[Path]:
        root = self.config.output_dir
        folders = [e.folder for e in site_editions(self.config).all]
        return [root / folder / item_path("issue", slug) / "email.html" for folder in folders]

    def links(self, slug: str) -> dict[str, str]:
        """Link id → URL of every link in the issue's published mail (every edition)."""
        if not slug or slug in (".", "..") or "/" in slug or "\\" in slug:
            return {}
        found: dict[str, str] = {}
        for page in self._pages(slug):
            try:
                found |= issue_links(self.secret, slug, page.read_text(encoding="utf-8"))
            except OSError:  # no such edition of the issue, or not published
                continue
        return found

    def follow(self, slug: str, link: str, count: bool) -> str | None:
        """The URL a counted link leads to (None: not a link of that issue); with `count` and
        counting on, one more click of that link today. Nothing about the reader is kept."""
        target = self.links(slug).get(link)
        if target is not None and count and self.counting:
            try:
                count_issue_event(self.engine, "click", slug, link, now_utc().date())
            except sa.exc.SQLAlchemyError as exc:  # the reader still gets where they wanted
                log.warning("click on %s not counted: %s", slug, type(exc).__name__)
        return target


def shown_clicks(links: dict[str, str], counters: list[DayCount]) -> dict[str, tuple[str, int]]:
    """Link id → (URL, clicks) of the links clicked at least MINIMUM times, most first."""
    totals: dict[str, int] = {}
    for counter in counters:
        if counter.kind == "click":
            totals[counter.item] = totals.get(counter.item, 0) + counter.count
    shown = {link: (links.get(link, "?"), n) for link, n in totals.items() if n >= MINIMUM}
    return dict(sorted(shown.items(), key=lambda item: -item[1][1]))
