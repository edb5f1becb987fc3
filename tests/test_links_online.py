"""`comms check --links` against local HTTP servers (pytest-httpserver): dead links, HEAD then
GET, timeouts, the per-host limit and the cache."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from comms.cli import cli
from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.external import ExternalLinks, dead_links

NOW = datetime(2020, 1, 15, tzinfo=ZoneInfo("Europe/Berlin"))
EVENT = """---
title: Werkstatt
start: 2020-04-16 10:00
location: {{name: Rathaus, city: Gifhorn}}
region: braunschweig
organiser: Bündnis
registration: {registration}
summary: Kurz.
---
{body}
"""
ISSUE = """---
number: 1
subject: Newsletter
preheader: Eine Ausgabe mit Links nach draußen.
date: 2020-01-10
status: {status}
events: [werkstatt]
---
Mehr bei [der Initiative]({link}).
"""


def _site(root: Path, *, link: str, registration: str, body: str, status: str = "ready") -> Path:
    (root / "content" / "events").mkdir(parents=True)
    (root / "content" / "issues").mkdir(parents=True)
    (root / "comms.toml").write_text('reference_date = "2020-01-15"\n', encoding="utf-8")
    (root / "content" / "events" / "werkstatt.md").write_text(
        EVENT.format(registration=registration, body=body), encoding="utf-8"
    )
    (root / "content" / "issues" / "2020-01-newsletter.md").write_text(
        ISSUE.format(status=status, link=link), encoding="utf-8"
    )
    return root


def _dead(root: Path, checker: ExternalLinks | None = None) -> list[str]:
    config = load_config(root / "comms.toml")
    site, errors = read_site(config)
    assert [e for e in errors if not e.warning] == []
    return [p.format(root) for p in dead_links(config, site, checker)]


def test_dead_links_are_warnings_at_file_and_line(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ok").respond_with_data("ok")
    httpserver.expect_request("/weg").respond_with_data("weg", status=404)
    # A server that refuses HEAD but answers GET is alive.
    httpserver.expect_request("/nur-get", method="HEAD").respond_with_data("", status=405)
    httpserver.expect_request("/nur-get", method="GET").respond_with_data("ok")
    _site(
        tmp_path,
        link=httpserver.url_for("/ok"),
        registration=httpserver.url_for("/weg"),
        body=f"[Programm]({httpserver.url_for('/nur-get')}) und [Saal](/events/werkstatt/).",
    )
    assert _dead(tmp_path) == [
        f"content/events/werkstatt.md:7: warning: link '{httpserver.url_for('/weg')}' does not "
        "work: HTTP 404",
    ]
    methods = sorted((r.method, r.path) for r, _ in httpserver.log)
    assert methods == [
        ("GET", "/nur-get"),
        ("HEAD", "/nur-get"),
        ("HEAD", "/ok"),
        ("HEAD", "/weg"),
    ]
    cache = tmp_path / "var" / "links-cache.json"
    assert cache.is_file()
    # var/ holds the database and the key: the cache is private like everything there.
    assert (cache.stat().st_mode & 0o777, cache.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def test_cache_keeps_working_links_for_a_day_and_asks_again_for_dead_ones(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ok").respond_with_data("ok")
    httpserver.expect_request("/weg").respond_with_data("weg", status=410)
    _site(
        tmp_path,
        link=httpserver.url_for("/ok"),
        registration=httpserver.url_for("/weg"),
        body="Text.",
    )
    cache = tmp_path / "var" / "links-cache.json"
    first = ExternalLinks(cache, NOW)
    assert len(_dead(tmp_path, first)) == 1 and first.fetched == 2
    again = ExternalLinks(cache, NOW + timedelta(hours=1))
    assert len(_dead(tmp_path, again)) == 1 and again.fetched == 1  # only the dead one
    later = ExternalLinks(cache, NOW + timedelta(days=2))
    assert len(_dead(tmp_path, later)) == 1 and later.fetched == 2


def test_the_cache_ages_by_the_clock_not_by_the_reference_date(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/weg").respond_with_data("weg", status=404)
    dead = httpserver.url_for("/weg")
    _site(tmp_path, link=dead, registration=dead, body="Text.")
    cache = tmp_path / "var" / "links-cache.json"
    cache.parent.mkdir(mode=0o700)
    # It worked when checked "on the reference date": long ago by the clock, so it is asked again.
    cache.write_text(json.dumps({dead: {"checked": NOW.isoformat(), "problem": None}}))
    assert len(_dead(tmp_path)) == 2


def test_timeouts_and_unreachable_hosts(tmp_path: Path, httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response("spät")

    httpserver.expect_request("/langsam").respond_with_handler(slow)
    _site(
        tmp_path,
        link=httpserver.url_for("/langsam"),
        # Port 9 on 127.0.0.1 (discard) has no server: the connection is refused.
        registration="http://127.0.0.1:9/anmeldung",
        body="Text.",
    )
    checker = ExternalLinks(tmp_path / "cache.json", NOW, timeout=(1.0, 0.3))
    assert sorted(_dead(tmp_path, checker)) == [
        "content/events/werkstatt.md:7: warning: link 'http://127.0.0.1:9/anmeldung' does not "
        "work: unreachable (ConnectionError)",
        f"content/issues/2020-01-newsletter.md:9: warning: link "
        f"'{httpserver.url_for('/langsam')}' does not work: no answer within 0.3 s",
    ]


@pytest.mark.slow
def test_at_most_two_requests_per_host_at_a_time(tmp_path: Path) -> None:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        active, peak, lock = [0], [0], threading.Lock()

        def handler(request: Request) -> Response:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.2)
            with lock:
                active[0] -= 1
            return Response("ok")

        for number in range(6):
            server.expect_request(f"/{number}").respond_with_handler(handler)
        body = " ".join(f"[Seite {n}]({server.url_for(f'/{n}')})" for n in range(1, 6))
        _site(tmp_path, link=server.url_for("/0"), registration=server.url_for("/1"), body=body)
        assert _dead(tmp_path) == []
        assert peak[0] == 2
    finally:
        server.stop()


def test_drafts_are_not_fetched_and_the_cli_reports_warnings(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/weg").respond_with_data("weg", status=404)
    _site(
        tmp_path,
        link=httpserver.url_for("/weg"),
        registration=httpserver.url_for("/weg"),
        body="Text.",
        status="draft",
    )
    config = str(tmp_path / "comms.toml")
    result = CliRunner().invoke(cli, ["--config", config, "check", "--links"])
    assert result.exit_code == 0 and result.stdout == ""
    assert httpserver.log == []
    issue = tmp_path / "content" / "issues" / "2020-01-newsletter.md"
    issue.write_text(issue.read_text("utf-8").replace("status: draft", "status: bereit"), "utf-8")
    result = CliRunner().invoke(cli, ["--config", config, "check", "--links"])
    url = httpserver.url_for("/weg")
    assert result.stdout.splitlines() == [
        f"content/events/werkstatt.md:7: warning: link '{url}' does not work: HTTP 404",
        f"content/issues/2020-01-newsletter.md:9: warning: link '{url}' does not work: HTTP 404",
    ]
    assert result.exit_code == 0
    result = CliRunner().invoke(cli, ["--config", config, "check", "--links", "--strict"])
    assert result.exit_code == 1
