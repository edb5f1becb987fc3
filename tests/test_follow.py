"""A standing-by server's output folder follows what another host publishes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from comms.core.config import Config, load_config
from comms.db.publishing import DbPublishState
from comms.db.store import Store, open_store
from comms.db.tables import scheduler_lease
from comms.publish.refresh import publish_now
from comms.schedule.follow import Follower
from comms.schedule.lease import Lease
from comms.schedule.runner import start_scheduler
from comms.schedule.standby import Standby
from comms.sending.campaign import prepare

from .test_refresh import pings, use_hub

pytestmark = pytest.mark.database

ISSUE = "2020-02-newsletter"  # ready, send_at after the sample's reference_date: not public yet


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(site_copy: Path) -> Iterator[tuple[Config, Store]]:
    config = load_config(site_copy / "comms.toml", environ={})
    store = open_store(config)
    yield config, store
    store.close()


def _page(config: Config) -> Path:
    return config.output_dir / "issues" / ISSUE / "index.html"


@pytest.mark.slow
def test_a_started_campaign_is_built_at_the_next_beat_and_nothing_else_is(
    setup: tuple[Config, Store], caplog: pytest.LogCaptureFixture
) -> None:
    config, store = setup
    follower = Follower(config, store.engine, Clock())
    caplog.set_level(logging.INFO, "comms.schedule")
    assert follower.beat(), "the first beat brings the folder current"
    assert not _page(config).exists()
    feed = (config.output_dir / "feed.xml").read_bytes()
    assert not follower.beat(), "nothing changed, nothing built"
    prepare(store, ISSUE, "h", [], [])  # `comms send` on another host
    assert follower.beat()
    assert _page(config).is_file()
    assert (config.output_dir / "feed.xml").read_bytes() != feed
    assert f"/issues/{ISSUE}/" in (config.output_dir / "issues" / "feed.xml").read_text("utf-8")
    rebuilt = [r.getMessage() for r in caplog.records if "output rebuilt" in r.getMessage()]
    assert len(rebuilt) == 2 and rebuilt[-1].endswith(f"(issues now public: {ISSUE})")
    # The same bytes as the host that sent (its build with the database's feed history).
    other = load_config(
        config.root / "comms.toml", {"output_dir": str(config.root / "other")}, environ={}
    )
    publish_now(other, DbPublishState.of(store.engine))
    for path in ("feed.xml", "atom.xml", "issues/feed.xml", f"issues/{ISSUE}/index.html"):
        assert (other.output_dir / path).read_bytes() == (config.output_dir / path).read_bytes()


def test_without_a_new_send_it_rebuilds_every_refresh_interval(
    setup: tuple[Config, Store],
) -> None:
    config, store = setup
    clock = Clock()
    follower = Follower(config, store.engine, clock)
    follower.beat()
    practice = next((config.content_dir / "practices").glob("*.md"))
    text = practice.read_text("utf-8")
    practice.write_text(text.replace('title: "', 'title: "Neu – ', 1), "utf-8")
    clock.now += config.settings.schedule.refresh_minutes * 60 - 1
    assert not follower.beat()
    clock.now += 1
    assert follower.beat()
    assert any(
        "Neu – " in p.read_text("utf-8") for p in (config.output_dir / "practices").rglob("*.html")
    )


def test_on_the_scheduler_s_host_it_follows_sends_only_and_tells_the_hubs(
    site_copy: Path, httpserver: HTTPServer
) -> None:
    """The refresh job does the periodic rebuilds there; a send started on another host is
    built at the next beat, and the hubs hear of the feeds it changed (whoever writes a feed
    first on a host is the one that notices the change, so this rebuild must tell them)."""
    httpserver.expect_request("/hub", method="POST").respond_with_data("", status=202)
    use_hub(site_copy, httpserver.url_for("/hub"))
    config = load_config(site_copy / "comms.toml", environ={})
    store = open_store(config)
    clock = Clock()
    follower = Follower(config, store.engine, clock)
    try:
        # The first beat: whatever happened since the start-up build.
        assert follower.beat(scheduling=True)
        pings(httpserver)
        clock.now += config.settings.schedule.refresh_minutes * 60 * 10
        assert not follower.beat(scheduling=True), "no periodic rebuild: the refresh job does those"
        prepare(store, ISSUE, "h", [], [])
        assert follower.beat(scheduling=True) and _page(config).is_file()
        told = pings(httpserver)
        assert "https://newsletter.example.org/issues/feed.xml" in told
        assert "https://newsletter.example.org/feed.xml" in told
    finally:
        store.close()


@pytest.mark.slow
def test_content_errors_keep_the_last_good_output_and_are_logged_once_per_change(
    setup: tuple[Config, Store], caplog: pytest.LogCaptureFixture
) -> None:
    config, store = setup
    clock = Clock()
    follower = Follower(config, store.engine, clock)
    follower.beat()
    before = {p: p.read_bytes() for p in config.output_dir.rglob("*") if p.is_file()}
    issue = config.content_dir / "issues" / f"{ISSUE}.md"
    good = issue.read_text("utf-8")
    issue.write_text(good.replace("number:", "number: zwei\nnumber_old:", 1), "utf-8")
    prepare(store, ISSUE, "h", [], [])
    assert not follower.beat()
    assert not follower.beat()  # said once, not at every beat
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "serving the last good output" in errors[0].getMessage()
    assert {p: p.read_bytes() for p in config.output_dir.rglob("*") if p.is_file()} == before
    issue.write_text(good, "utf-8")
    clock.now += config.settings.schedule.refresh_minutes * 60
    assert follower.beat() and _page(config).is_file()


def _until(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_a_standby_follows_until_it_takes_the_scheduler_over(
    site_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Beats every quarter of the (shortest) lease: the first builds, a send shows up."""
    environ = {"COMMS_SCHEDULE_LEASE_SECONDS": "10"}
    config = load_config(site_copy / "comms.toml", environ=environ)
    store = open_store(config)
    other = Lease(store.engine, 600, owner="other-host:1:x")
    assert other.acquire()
    caplog.set_level(logging.INFO, "comms.schedule")
    standby = Standby(config, store).start()
    try:
        _until(lambda: (config.output_dir / "index.html").is_file(), "no first build")
        prepare(store, ISSUE, "h", [], [])
        _until(lambda: _page(config).is_file(), "the send never showed up")
        other.release()
        _until(lambda: standby.handle is not None, "the standby never took over")
    finally:
        standby.shutdown()
        store.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "comms.schedule"]
    assert any(m.startswith("took over the scheduler") for m in messages), messages
    assert any(m.endswith(f"(issues now public: {ISSUE})") for m in messages)


@pytest.mark.slow
def test_a_scheduler_that_lost_its_lease_stands_by_again(
    site_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two servers: after a database outage longer than the lease the other one holds it.
    This one stops scheduling, follows again and tries for the lease at each beat, so that it
    takes over once more when the other one is gone."""
    config = load_config(site_copy / "comms.toml", environ={"COMMS_SCHEDULE_LEASE_SECONDS": "10"})
    store = open_store(config)
    handle = start_scheduler(config, store)
    assert handle is not None
    caplog.set_level(logging.INFO, "comms.schedule")
    standby = Standby(config, store, handle).start()
    try:
        with store.engine.begin() as conn:  # the other server's takeover, as the row shows it
            conn.execute(sa.update(scheduler_lease).values(owner="other-host:1:x"))
        _until(lambda: standby.handle is None, "it never noticed the lost lease")
        with store.engine.begin() as conn:  # the other server is gone for good
            conn.execute(sa.delete(scheduler_lease))
        _until(lambda: standby.handle is not None, "it never took over again")
    finally:
        standby.shutdown()
        store.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "comms.schedule"]
    assert "this process no longer runs the scheduler; standing by" in messages


def test_a_standby_stopped_before_it_started_stops_cleanly(setup: tuple[Config, Store]) -> None:
    """`comms serve` starts it after its first build; a SIGTERM may come before."""
    config, store = setup
    standby = Standby(config, store)
    standby.shutdown()
    assert standby.handle is None
