"""One owner builds the site as it is published now: `comms.publish.refresh.publish_now`.

Every caller (the CLI's build, refresh, serve and demo, the preview, the scheduler's refresh
job, the follower, a send) goes through it; only it reads the sent issues into the site, builds
and writes. And every build producer gets the same one `Build`, none by its identity.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import jinja2
import mjml
import pytest
from click.testing import CliRunner
from feedgen.feed import FeedGenerator

from comms.cli import cli
from comms.content.site import read_site
from comms.core.config import Config, load_config
from comms.core.languages import site_editions
from comms.db.publishing import DbPublishState
from comms.db.store import Store, open_store
from comms.publish import build, calendars, feeds
from comms.publish.link_check import LinkChecker
from comms.publish.producer import Build, Files, Producer
from comms.publish.refresh import publish_now
from comms.publish.state import ScratchState
from comms.schedule.follow import Follower
from comms.schedule.jobs import refresh_feeds
from comms.sending.campaign import prepare

from .conftest import ROOT

ISSUE = "2020-02-newsletter"  # ready, send_at after the sample's reference_date: public once sent

#: Who may call the low-level build functions, and why.
ALLOWED = {
    "write_output": {"comms/publish/refresh.py"},  # publish_now
    # publish_now, and the link check's in-memory build (which pages exist; nothing written).
    "collect": {"comms/publish/refresh.py", "comms/publish/link_check.py"},
    "sent": {"comms/publish/refresh.py"},  # publish_now sets `site.sent` from the state
}


def build_uses(path: Path) -> list[tuple[str, int]]:
    """(name, line) of every call of collect/write_output and every `x.sent = …` but `self`'s."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("collect", "write_output"):
                found.append((name, node.lineno))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if (
                        isinstance(part, ast.Attribute)
                        and part.attr == "sent"
                        and not (isinstance(part.value, ast.Name) and part.value.id == "self")
                    ):
                        found.append(("sent", node.lineno))
    return sorted(found, key=lambda use: use[1])


def test_only_the_service_builds_writes_and_decides_what_is_sent() -> None:
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {name}"
        for path in sorted((ROOT / "comms").rglob("*.py"))
        if path.relative_to(ROOT).as_posix() != "comms/publish/build.py"
        for name, line in build_uses(path)
        if path.relative_to(ROOT).as_posix() not in ALLOWED[name]
    ]
    assert found == [], "publish through comms.publish.refresh.publish_now"


def test_the_check_sees_every_form(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "files = collect(b)\n"
        "build.write_output(out, files)\n"
        "site.sent = frozenset()\n"
        "site.sent, other = x, y\n"
        "self.sent = None\n"
        "collector(b)\n",
        encoding="utf-8",
    )
    assert build_uses(source) == [("collect", 1), ("write_output", 2), ("sent", 3), ("sent", 4)]


def test_every_producer_gets_the_one_build(
    monkeypatch: pytest.MonkeyPatch, site_copy: Path
) -> None:
    # A copy: comparing the builds makes every body, and the image copies are cached in var/.
    config = load_config(site_copy / "comms.toml", environ={})
    site, _ = read_site(config)
    seen: list[Build] = []

    def recording(producer: Producer) -> Producer:
        def run(given: Build) -> Files:
            seen.append(given)
            return producer(given)

        return run

    whole = build.collect(Build(config, site, ScratchState()))
    monkeypatch.setattr(build, "PRODUCERS", [recording(p) for p in build.PRODUCERS])
    one = Build(config, site, ScratchState())
    assert build.collect(one) == whole
    assert len(seen) == len(build.PRODUCERS) and all(given is one for given in seen)


def test_the_link_check_lists_every_built_path_without_rendering_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The paths a build produces have one owner (`collect`), and listing them makes no body:
    a producer that renders a page, mail, feed, calendar or copy to name it fails here."""
    config = load_config(ROOT / "comms.toml", environ={})
    site, _ = read_site(config)
    assert site_editions(config).translated  # the editions' producer is covered too
    whole = set(build.collect(Build(config, site, ScratchState())))

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("a body was made only to list the paths")

    monkeypatch.setattr(jinja2.Template, "render", refuse)
    monkeypatch.setattr(mjml, "mjml2html", refuse)
    monkeypatch.setattr(FeedGenerator, "rss_str", refuse)
    monkeypatch.setattr(FeedGenerator, "atom_str", refuse)
    monkeypatch.setattr(feeds, "_json_feed", refuse)
    monkeypatch.setattr(calendars, "_calendar", refuse)
    read_bytes = Path.read_bytes
    cache = config.root / "var" / "cache"

    def read_cache_only(path: Path) -> bytes:
        # What a build keeps between runs (image sizes, compiled catalogs) is no body.
        return read_bytes(path) if path.is_relative_to(cache) else refuse(path)

    monkeypatch.setattr(Path, "read_bytes", read_cache_only)
    assert LinkChecker(config, site).produced == whole


def _cli(config: Config, _store: Store, command: str) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config.path), command])
    assert result.exit_code == 0, result.output


#: Every caller that publishes the output folder from the database, as it runs.
CALLERS: dict[str, Callable[[Config, Store], object]] = {
    "comms build": lambda config, store: _cli(config, store, "build"),
    "comms refresh": lambda config, store: _cli(config, store, "refresh"),
    "scheduler refresh job": lambda config, _store: refresh_feeds(str(config.path)),
    "follower": lambda config, store: Follower(config, store.engine).beat(),
    "follower with the scheduler": lambda config, store: Follower(config, store.engine).beat(True),
}


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.parametrize("caller", CALLERS)
def test_every_caller_publishes_what_the_ledger_and_the_feed_history_say(
    site_copy: Path, caller: str
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    store = open_store(config)
    try:
        prepare(store, ISSUE, "h", [], [])  # its campaign started: public whatever its send_at
        CALLERS[caller](config, store)
        state = DbPublishState.of(store.engine)
        assert state.feed_rows(), "the feed history is the database's"
        other = load_config(
            config.root / "comms.toml", {"output_dir": str(config.root / "other")}, environ={}
        )
        published = publish_now(other, state)
    finally:
        store.close()
    assert published.site.sent == {ISSUE}
    assert (config.output_dir / "issues" / ISSUE / "index.html").is_file()
    for path in ("feed.xml", "issues/feed.xml", "en/issues/atom.xml", "events.ics"):
        assert (config.output_dir / path).read_bytes() == (other.output_dir / path).read_bytes()
