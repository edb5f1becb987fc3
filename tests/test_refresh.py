"""`comms refresh` against a real local WebSub hub (pytest-httpserver)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from comms.cli import cli
from comms.core.config import load_config
from comms.core.errors import ContentErrors
from comms.publish import refresh as publish
from comms.publish.state import FileState

BASE = "https://newsletter.example.org/"
PRACTICE = "content/practices/film-workshop-uelzen.md"


def refresh(root: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(root / "comms.toml"), "refresh"])
    return result.exit_code, result.stdout, result.stderr


def use_hub(root: Path, url: str) -> None:
    with (root / "comms.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[feeds]\nhubs = ["{url}"]\n')


#: The folders of the sample's editions: the site's root, then one per other language.
EDITIONS = ("", "en/", "de-x-ls/", "ar/")


def pings(httpserver: HTTPServer) -> list[str]:
    found = []
    for request, _ in httpserver.log:
        assert request.method == "POST"
        assert request.form["hub.mode"] == "publish"
        found.append(request.form["hub.url"])
    httpserver.clear_log()
    return found


@pytest.mark.slow
def test_one_ping_per_changed_feed_and_none_when_unchanged(
    site_copy: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=202)
    use_hub(site_copy, httpserver.url_for("/hub"))
    code, out, err = refresh(site_copy)
    assert code == 0, err
    first = pings(httpserver)
    feeds = sorted(
        p.relative_to(site_copy / "public").as_posix()
        for p in site_copy.glob("public/**/*")
        if p.name in ("feed.xml", "atom.xml", "feed.json")
    )
    # 30 feeds for the site, the same for each edition under /<lang>/ (comms.toml [languages])
    assert len(feeds) == 30 * len(EDITIONS)
    assert sorted(first) == [BASE + path for path in feeds]
    assert f"notified {httpserver.url_for('/hub')}: {BASE}events/atom.xml" in out.splitlines()

    mtimes = {p: p.stat().st_mtime_ns for p in (site_copy / "public").rglob("*") if p.is_file()}
    code, out, _ = refresh(site_copy)
    assert code == 0
    produced = len(mtimes) - 1  # everything but the manifest
    assert out == f"0 file(s) written, {produced} unchanged, 0 removed\n"
    assert pings(httpserver) == []
    assert mtimes == {p: p.stat().st_mtime_ns for p in mtimes}  # so ETags and 304s hold

    practice = site_copy / PRACTICE
    practice.write_text(practice.read_text("utf-8") + "\nNeu: ein Nachtrag.\n", "utf-8")
    code, out, _ = refresh(site_copy)
    assert code == 0
    # The practice has no translation: every edition shows the changed original.
    expected = sorted(
        BASE + lang + f + n
        for lang in EDITIONS
        for f in ("", "practices/")
        for n in ("atom.xml", "feed.json", "feed.xml")
    )
    assert sorted(pings(httpserver)) == expected
    # per edition the six feeds; the practice's archive page in the site's edition only (an
    # edition has pages only of items translated into it)
    changed = 6 * len(EDITIONS) + 1
    assert out.startswith(f"{changed} file(s) written, {produced - changed} unchanged, 0 removed\n")


@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_a_failing_hub_keeps_the_files_and_is_retried_next_time(
    site_copy: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "BACKOFF", 0.01)
    hub = httpserver.url_for("/hub")
    use_hub(site_copy, hub)
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    assert refresh(site_copy)[0] == 0
    assert len(pings(httpserver)) == 30 * len(EDITIONS)
    practice = site_copy / PRACTICE
    practice.write_text(practice.read_text("utf-8") + "\nNeu.\n", "utf-8")
    httpserver.clear_all_handlers()
    httpserver.expect_request("/hub", method="POST").respond_with_data("busy", status=503)
    code, out, err = refresh(site_copy)
    assert code == 1
    assert re.match(rf"{6 * len(EDITIONS) + 1} file\(s\) written, \d+ unchanged, 0 removed\n", out)
    errors = err.splitlines()
    # The first changed feed (sorted: an edition's) fails, the rest are not sent.
    assert f"error: hub {hub} did not take {BASE}ar/atom.xml (HTTP 503)" in errors
    assert (
        f"error: hub {hub} did not take {BASE}feed.xml "
        "(not sent: the hub failed with HTTP 503)" in errors
    )
    assert len(errors) == 6 * len(EDITIONS)
    assert len(pings(httpserver)) == publish.ATTEMPTS  # then it leaves the hub alone
    assert b"Neu." in (site_copy / "public" / "practices" / "feed.xml").read_bytes()

    httpserver.clear_all_handlers()
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=204)
    code, out, _ = refresh(site_copy)  # nothing changed, but the hub still has to hear of it
    assert code == 0
    assert len(pings(httpserver)) == 6 * len(EDITIONS)
    assert refresh(site_copy)[0] == 0
    assert pings(httpserver) == []


def test_a_hub_that_refuses_is_not_asked_again_in_the_same_run(
    site_copy: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hub", method="POST").respond_with_data("no", status=400)
    use_hub(site_copy, httpserver.url_for("/hub"))
    code, _, err = refresh(site_copy)
    assert code == 1
    assert len(pings(httpserver)) == 30 * len(EDITIONS)  # once per feed, no retries of a 4xx
    assert err.count("(HTTP 400)") == 30 * len(EDITIONS)


def test_content_errors_write_nothing(site_copy: Path) -> None:
    broken = site_copy / "content" / "events" / "broken.md"
    broken.write_text("---\ntitle: x\n", encoding="utf-8")
    code, out, err = refresh(site_copy)
    assert code == 1
    assert out.startswith("content/events/broken.md:1: ")
    assert err.endswith("; nothing written\n")
    assert not (site_copy / "public").exists()


def test_the_scheduler_entry_point_refuses_bad_content(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    state = FileState(config.root)
    assert publish.publish_now(config, state, tell_hubs=True).write.written  # writes everything
    (site_copy / "content" / "events" / "broken.md").write_text("---\ntitle: x\n", "utf-8")
    with pytest.raises(ContentErrors) as raised:
        publish.publish_now(config, state, tell_hubs=True)
    assert [e.path.name for e in raised.value.errors] == ["broken.md"]


def test_an_unreachable_hub_is_given_up_after_one_feed(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "BACKOFF", 0.01)
    use_hub(site_copy, "http://127.0.0.1:9/hub")  # the discard port: nobody listens
    code, _, err = refresh(site_copy)
    assert code == 1
    errors = err.splitlines()
    assert len(errors) == 30 * len(EDITIONS)
    assert errors[0].startswith(
        f"error: hub http://127.0.0.1:9/hub did not take {BASE}ar/atom.xml (ConnectionError: "
    )
    assert errors[1].endswith("(not sent: the hub failed with ConnectionError)")


@pytest.mark.slow  # about 2 CPU-s or more (two or more builds of the sample site)
def test_failed_pings_queued_by_another_refresh_meanwhile_are_kept(
    site_copy: Path, httpserver: HTTPServer
) -> None:
    """Two refreshes in one process (the refresh job and a send, or the follower): while this
    one talks to the hubs, the other queues a failure of its own; neither list is lost."""
    refused, ok = httpserver.url_for("/refuse"), httpserver.url_for("/ok")
    with (site_copy / "comms.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[feeds]\nhubs = ["{refused}", "{ok}"]\n')
    config = load_config(site_copy / "comms.toml")
    state = FileState(config.root)
    theirs = (ok, "https://newsletter.example.org/anderer-feed.xml")

    def refuse(_request: Request) -> Response:
        state.set_pending_pings(state.pending_pings() | {theirs})  # the other refresh's failure
        return Response("nein", status=400)

    httpserver.expect_request("/refuse", method="POST").respond_with_handler(refuse)
    httpserver.expect_request("/ok", method="POST").respond_with_data("", status=202)
    report = publish.publish_now(config, state, tell_hubs=True)
    assert report.changed_feeds
    assert state.pending_pings() == {theirs} | {(refused, f) for f in report.changed_feeds}
