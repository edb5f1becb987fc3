"""The output folder over real HTTP: media types, strong ETags, 304s and WebSub Link headers."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from comms.content.reader import read_content
from comms.core.config import load_config
from comms.publish import build
from comms.publish.producer import Build
from comms.publish.state import FileState
from comms.web.app import create_app

HUB = "https://hub.example.org/"


@pytest.fixture
def served(site_copy: Path) -> Iterator[tuple[str, Path]]:
    """Build the sample site and serve its output folder on 127.0.0.1; yield (base URL, folder)."""
    config = load_config(site_copy / "comms.toml", overrides={"feeds": {"hubs": [HUB]}}, environ={})
    s = config.settings
    site, errors = read_content(config.content_dir, config.tz, s.regions, s.topics)
    assert errors == []
    build.write_output(
        config.output_dir, build.collect(Build(config, site, FileState(config.root)))
    )
    server = make_server("127.0.0.1", 0, create_app(config.output_dir, config))
    # serve_forever polls for shutdown every 0.5 s by default; each test would wait that long.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", config.output_dir
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("feed.xml", "application/rss+xml; charset=utf-8"),
        ("atom.xml", "application/atom+xml; charset=utf-8"),
        ("feed.json", "application/feed+json"),
        ("events/region/lueneburg/feed.json", "application/feed+json"),
        ("events.ics", "text/calendar; charset=utf-8"),
        ("events-weser-ems.ics", "text/calendar; charset=utf-8"),
    ],
)
def test_media_types(served: tuple[str, Path], path: str, media_type: str) -> None:
    base, out = served
    response = requests.get(f"{base}/{path}", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == media_type
    assert response.content == (out / path).read_bytes()


def test_conditional_get(served: tuple[str, Path]) -> None:
    base, out = served
    url = f"{base}/events/atom.xml"
    first = requests.get(url, timeout=5)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    assert "max-age=" in first.headers["Cache-Control"]
    assert first.headers["Vary"] == "Accept-Encoding"
    by_tag = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert (by_tag.status_code, by_tag.content) == (304, b"")
    assert by_tag.headers["ETag"] == etag
    by_date = requests.get(url, headers={"If-Modified-Since": modified}, timeout=5)
    assert (by_date.status_code, by_date.content) == (304, b"")
    stale = requests.get(url, headers={"If-None-Match": '"something-else"'}, timeout=5)
    assert stale.status_code == 200 and stale.content == first.content
    # A change in the bytes gives a new tag and a full answer to the old one.
    (out / "events" / "atom.xml").write_bytes(first.content.replace(b"Termine", b"Termine!"))
    changed = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert b"Termine!" in changed.content


def test_feeds_advertise_hub_and_self(served: tuple[str, Path]) -> None:
    base, _ = served
    response = requests.get(f"{base}/events/feed.xml", timeout=5)
    self_url = "https://newsletter.example.org/events/feed.xml"
    assert response.headers["Link"] == f'<{HUB}>; rel="hub", <{self_url}>; rel="self"'
    assert f'href="{self_url}" rel="self"'.encode() in response.content
    calendar = requests.get(f"{base}/events.ics", timeout=5)
    assert "Link" not in calendar.headers


def test_gzip_is_a_representation_of_its_own(served: tuple[str, Path]) -> None:
    base, out = served
    url = f"{base}/feed.xml"
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=5)
    assert "Content-Encoding" not in plain.headers
    assert plain.content == (out / "feed.xml").read_bytes()
    packed = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5)
    raw = packed.raw.read(decode_content=False)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw) == plain.content
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert len(raw) < len(plain.content) / 3
    again = requests.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}, timeout=5
    )
    assert (again.status_code, again.content) == (304, b"")
    # A tag of the other representation does not match.
    other = requests.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]}, timeout=5
    )
    assert other.status_code == 200


def test_if_none_match_wins_over_if_modified_since(served: tuple[str, Path]) -> None:
    base, _ = served
    url = f"{base}/events.ics"
    first = requests.get(url, timeout=5)
    headers = {"If-None-Match": '"old"', "If-Modified-Since": first.headers["Last-Modified"]}
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    assert requests.head(url, timeout=5).headers["ETag"] == first.headers["ETag"]
