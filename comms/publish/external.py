"""`comms check --links`: fetch the external links of ready issues, report dead ones as warnings.

HEAD first (cheap), GET when a server does not answer HEAD properly; timeouts; at most a few
requests per host at a time; results kept in `var/links-cache.json` so that a second run within
a day does not ask again (dead links are always asked again: someone may have fixed them).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests

from comms import __version__
from comms.content.models import IssueStatus, Site
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.core.files import write_private
from comms.publish.gate import shown_paths
from comms.publish.link_check import file_references

CACHE_FILE = Path("var") / "links-cache.json"
#: Seconds to connect and to read the answer.
TIMEOUT = (5.0, 10.0)
PER_HOST = 2
WORKERS = 8
#: How long a link that worked is believed to work.
FRESH = timedelta(days=1)
#: Answers to HEAD that say nothing about GET: ask again with GET.
RETRY_WITH_GET = frozenset({400, 403, 405, 406, 429, 500, 501, 503})
HEADERS = {"User-Agent": f"comms/{__version__} link check"}


def _probe(session: requests.Session, url: str, timeout: tuple[float, float]) -> str | None:
    """None if the URL answers with success (after redirects), else what went wrong."""
    try:
        response = session.head(url, allow_redirects=True, timeout=timeout)
        if response.status_code in RETRY_WITH_GET:
            response.close()
            response = session.get(url, allow_redirects=True, timeout=timeout, stream=True)
        response.close()
    except requests.Timeout:
        return f"no answer within {timeout[1]:g} s"
    except requests.TooManyRedirects:
        return "too many redirects"
    except requests.RequestException as exc:
        return f"unreachable ({type(exc).__name__})"
    if response.status_code >= 400:
        return f"HTTP {response.status_code}"
    return None


class ExternalLinks:
    """Checks URLs against the network with a per-host limit and a cache file."""

    def __init__(
        self,
        cache_path: Path,
        now: datetime,
        timeout: tuple[float, float] = TIMEOUT,
        per_host: int = PER_HOST,
    ) -> None:
        self.cache_path = cache_path
        self.now = now
        self.timeout = timeout
        self._hosts: dict[str, threading.Semaphore] = defaultdict(
            lambda: threading.Semaphore(per_host)
        )
        self._lock = threading.Lock()
        self.fetched = 0

    def _load(self) -> dict[str, dict[str, str | None]]:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _fresh(self, entry: dict[str, str | None]) -> bool:
        try:
            checked = datetime.fromisoformat(str(entry.get("checked")))
        except ValueError:
            return False
        return entry.get("problem") is None and self.now - checked < FRESH

    def check(self, urls: Iterable[str]) -> dict[str, str | None]:
        """Every URL → None (works) or its problem; asks the network only for stale ones."""
        cache = self._load()
        wanted = sorted(set(urls))
        ask = [url for url in wanted if not (url in cache and self._fresh(cache[url]))]

        def one(url: str) -> tuple[str, str | None]:
            host = (urlsplit(url).hostname or "").lower()
            with self._lock:
                limit = self._hosts[host]
            with limit, requests.Session() as session:
                session.headers.update(HEADERS)
                return url, _probe(session, url, self.timeout)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for url, problem in pool.map(one, ask):
                cache[url] = {"checked": self.now.isoformat(), "problem": problem}
        self.fetched += len(ask)
        self._save(cache)
        return {url: cache[url].get("problem") for url in wanted}

    def _save(self, cache: dict[str, dict[str, str | None]]) -> None:
        # Beside the database and the key in var/: private like every file comms writes there.
        data = json.dumps(cache, indent=1, sort_keys=True)
        write_private(self.cache_path, data.encode("utf-8"))


def _external(url: str, own_host: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and bool(host) and host != own_host


def dead_links(
    config: Config, site: Site, checker: ExternalLinks | None = None
) -> list[ContentError]:
    """Warnings at file:line for dead external links of the ready issues and what they show."""
    # How old a check is, is a question for the clock, never for `reference_date`.
    checker = checker or ExternalLinks(config.root / CACHE_FILE, now_utc())
    paths: list[Path] = []
    for issue in sorted(site.issues.values(), key=lambda i: i.slug):
        if issue.status is IssueStatus.READY:
            paths.extend(path for path in shown_paths(site, issue) if path not in paths)
    found = [
        (path, ref)
        for path in paths
        for ref in file_references(path)
        if _external(ref.url, config.host.lower())
    ]
    results = checker.check(ref.url for _, ref in found)
    return [
        ContentError(
            path, ref.line, f"link '{ref.url}' does not work: {results[ref.url]}", warning=True
        )
        for path, ref in found
        if results.get(ref.url)
    ]
