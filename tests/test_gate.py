"""The gate: what blocks sending one issue is what `comms check` reports for it."""

from __future__ import annotations

from pathlib import Path

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.gate import issue_problems

ISSUE = "content/issues/2020-04-newsletter.md"
EVENT = "content/events/2020-07-10-follow-up-werkstatt-frauen.md"


def _edit(site: Path, name: str, old: str, new: str) -> None:
    path = site / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(site: Path, slug: str = "2020-04-newsletter") -> list[str]:
    config = load_config(site / "comms.toml")
    content, errors = read_site(config)
    return [p.format(site) for p in issue_problems(config, content, errors, slug)]


def test_sample_issues_have_no_problems(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml")
    content, errors = read_site(config)
    assert len(content.issues) >= 4
    for slug in content.issues:
        assert issue_problems(config, content, errors, slug) == []


def test_a_shown_event_with_errors_blocks_the_issue(site_copy: Path) -> None:
    _edit(site_copy, EVENT, "region: landesweit", "region: hamburg")
    assert _problems(site_copy) == [
        f"{EVENT}:9: field 'region': unknown region 'hamburg' "
        "(known: braunschweig, landesweit, leine-weser, lueneburg, weser-ems)",
        f"{ISSUE}:9: field 'events': events/2020-07-10-follow-up-werkstatt-frauen.md has errors; "
        "see above",
    ]


def test_misspelt_slug_gets_did_you_mean(site_copy: Path) -> None:
    _edit(site_copy, ISSUE, "award: sonderpreis-2020", "award: sonderpreis-202")
    assert _problems(site_copy) == [
        f"{ISSUE}:12: field 'award': no award 'sonderpreis-202' in awards/; "
        "did you mean 'sonderpreis-2020'?",
    ]


def test_other_issues_errors_do_not_block(site_copy: Path) -> None:
    _edit(site_copy, ISSUE, "award: sonderpreis-2020", "award: kein-preis")
    assert _problems(site_copy, "2020-02-newsletter") == []


def test_link_errors_of_shown_items_block_the_issue(site_copy: Path) -> None:
    _edit(site_copy, EVENT, "Am 3. Juni 2019", "Am [3. Juni 2019](/events/gibtsnicht/)")
    assert _problems(site_copy) == [
        f"{EVENT}:17: link to a page the build does not produce: '/events/gibtsnicht/'",
    ]


def test_the_gate_reports_what_check_reports() -> None:
    from comms.publish.gate import site_problems

    from .conftest import BAD

    config = load_config(BAD / "comms.toml")
    site, errors = read_site(config)
    everything = {*errors, *site_problems(config, site)}
    for slug in ("bad-status", "header-break", "missing-reference", "misspelt-reference"):
        problems = issue_problems(config, site, errors, slug)
        assert problems and set(problems) <= everything
        assert not any(p.warning for p in problems)
    lines = [p.format(BAD) for p in issue_problems(config, site, errors, "misspelt-reference")]
    assert lines == [
        "events/never-closed.md:1: front matter is never closed: add a '---' line after it",
        "issues/misspelt-reference.md:8: field 'events': no event 'dup-slg' in events/; "
        "did you mean 'dup-slug'?",
        "issues/misspelt-reference.md:9: field 'events': events/never-closed.md has errors; "
        "see above",
    ]
