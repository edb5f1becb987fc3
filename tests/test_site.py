"""`comms build`: archive layout, determinism, JSON-LD, and nothing written on content errors."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from comms.cli import cli
from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.errors import RenderError
from comms.publish.build import PRODUCERS
from comms.publish.producer import Build
from comms.publish.render import site_files
from comms.publish.state import ScratchState

from .conftest import ROOT


def _build(site: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(site / "comms.toml"), "build", *args])
    return result.exit_code, result.stdout, result.stderr


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.slow
def test_two_builds_give_identical_bytes(site_copy: Path) -> None:
    code, out, err = _build(site_copy, "--out", str(site_copy / "a"))
    assert code == 0, err
    count = len(_tree(site_copy / "a")) - 1  # without the manifest
    assert out == f"Built {site_copy / 'a'}: {count} written, 0 unchanged, 0 removed\n"
    _build(site_copy, "--out", str(site_copy / "b"))
    assert _tree(site_copy / "a") == _tree(site_copy / "b")
    (site_copy / "a" / "style.css").write_text("changed", encoding="utf-8")
    code, out, _ = _build(site_copy, "--out", str(site_copy / "a"))
    assert out == f"Built {site_copy / 'a'}: 1 written, {count - 1} unchanged, 0 removed\n"
    assert _tree(site_copy / "a") == _tree(site_copy / "b")


def test_layout_of_the_output_folder(site_copy: Path) -> None:
    code, _, err = _build(site_copy)
    assert code == 0, err
    files = set(_tree(site_copy / "public"))
    for slug in ("2019-07-newsletter", "2019-11-newsletter"):
        assert {f"issues/{slug}/index.html", f"issues/{slug}/email.html"} <= files
        assert f"issues/{slug}/email.txt" in files
    # Drafts stay out of the public archive; `comms preview` shows them. So does an issue whose
    # send_at (4 Feb 2020) is after the reference date, until it has been sent.
    for slug in ("2020-04-newsletter", "2020-02-newsletter"):
        assert not any(path.startswith(f"issues/{slug}/") for path in files)
    assert "events/2020-11-30-fuenfter-jahrestag/index.html" in files
    assert "practices/film-workshop-uelzen/index.html" in files
    assert "awards/sonderpreis-2020/index.html" in files
    assert "images/stuhlbau-projekt-lamspringe.jpg" in files
    assert {"index.html", "style.css", "events/index.html", "issues/index.html"} <= files
    # The feeds stage adds its files to the same build.
    assert {"feed.xml", "atom.xml", "feed.json", "events.ics"} <= files
    assert "events/2020-11-30-fuenfter-jahrestag.ics" in files


def test_index_lists_issues_newest_first_and_upcoming_events(site_copy: Path) -> None:
    _build(site_copy)
    index = (site_copy / "public" / "index.html").read_text(encoding="utf-8")
    positions = [
        index.index(f'href="issues/{slug}/"')
        for slug in ("2019-11-newsletter", "2019-07-newsletter")
    ]
    assert positions == sorted(positions)
    assert "2020-02-newsletter" not in index  # its send_at is still to come
    # Reference date 2020-01-15: the FAQ workshop (March 2020) is upcoming, Friedland 2019 not.
    assert 'href="events/2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen/"' in index
    assert "2019-06-20-weltfluechtlingstag-friedland" not in index
    assert '<link rel="alternate" type="application/rss+xml"' in index
    assert 'href="subscribe"' in index
    assert "<script" not in index


def test_event_page_has_schema_org_event(site_copy: Path) -> None:
    _build(site_copy)
    slug = "2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen"
    page = (site_copy / "public" / "events" / slug / "index.html").read_text(encoding="utf-8")
    match = re.search(r'<script type="application/ld\+json">\n(.*?)\n</script>', page, re.S)
    assert match is not None
    data = json.loads(match.group(1))
    assert data["@type"] == "Event"
    assert data["startDate"] == "2020-03-25T10:00:00+01:00"
    assert data["eventStatus"] == "https://schema.org/EventPostponed"
    assert data["location"]["address"]["postalCode"] == "38100"
    name = f"https://newsletter.example.org/event/{slug}"
    assert data["identifier"] == f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
    assert f'href="../{slug}.ics"' in page
    assert '<p class="status">Verschoben</p>' in page


def test_content_errors_write_nothing(site_copy: Path) -> None:
    bad = site_copy / "content" / "events" / "broken.md"
    bad.write_text("---\ntitle: x\nstart: 31.02.2020\n---\n", encoding="utf-8")
    code, out, err = _build(site_copy)
    assert code == 1
    assert "content/events/broken.md:3: field 'start': 31.02.2020: February 2020 has 29 days" in out
    assert err.endswith("error(s); nothing written\n")
    assert not (site_copy / "public").exists()


def test_render_leaves_feed_paths_to_the_feeds_stage() -> None:
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    files = set(site_files(Build(config, site, ScratchState())))
    assert not files & {"feed.xml", "atom.xml", "feed.json", "events.ics"}
    assert not [path for path in files if path.endswith((".ics", ".xml", ".json"))]
    assert site_files in PRODUCERS


def test_static_file_may_not_replace_a_page(site_copy: Path) -> None:
    (site_copy / "static" / "index.html").write_text("<p>mine</p>", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(site_copy / "comms.toml"), "build"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RenderError)
    assert str(result.exception) == "static/index.html would replace a generated page; rename it"
    assert not (site_copy / "public").exists()


def test_public_copies_of_the_mail_have_no_placeholders(site_copy: Path) -> None:
    _build(site_copy)
    for name in ("email.html", "email.txt"):
        body = (site_copy / "public" / "issues" / "2019-11-newsletter" / name).read_text("utf-8")
        assert "%%" not in body
        assert "https://newsletter.example.org/subscribe" in body
