"""Counting views of an issue's archive page as `comms serve` answers them: a number per issue,
edition and day; no cookie, no IP address, no user agent is looked at or stored."""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.content.models import KINDS
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.languages import site_editions
from comms.db.counters import count_issue_event

log = logging.getLogger(__name__)


class ViewCounter:
    """Counts GETs of issue pages (`issues/<slug>/`, `<lang>/issues/<slug>/`) per day."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self.engine = engine
        editions = site_editions(config)
        folders = "|".join(re.escape(e.language) for e in editions.translated)
        lang = f"(?:(?P<lang>{folders})/)?" if folders else ""
        folder = re.escape(KINDS["issue"].folder)
        self._page = re.compile(rf"/?{lang}{folder}/(?P<slug>[^/]+)/?(?:index\.html)?")

    def issue_page(self, url_path: str) -> tuple[str, str] | None:
        """(slug, edition language or '') when `url_path` is an issue's archive page."""
        found = self._page.fullmatch(url_path)
        if found is None:
            return None
        return found.group("slug"), found.groupdict().get("lang") or ""

    def viewed(self, url_path: str) -> bool:
        """Count one view of `url_path` if it is an issue's page of a sent issue.

        A database that does not answer loses the view, never the page: counting is not
        worth an error page.
        """
        page = self.issue_page(url_path)
        if page is None:
            return False
        slug, edition = page
        try:
            return count_issue_event(self.engine, "view", slug, edition, now_utc().date())
        except sa.exc.SQLAlchemyError as exc:
            log.warning("view of %s not counted: %s", url_path, type(exc).__name__)
            return False
