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


def test_valid_issue_has_no_problems(site_copy: Path) -> None:
    assert _problems(site_copy) == []


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
