"""The check cache: `comms check` scans again only what changed, and says the same either way."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from comms.cli import cli
from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish import link_check, templating
from comms.publish.check_cache import CHECK_DIR
from comms.publish.gate import check_problems

from .conftest import BAD


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose links are scanned (their Markdown converted) from now on."""
    scanned: list[Path] = []
    scan: Callable[[Path, str], list[link_check.Reference]] = link_check._text_references

    def counted(path: Path, text: str) -> list[link_check.Reference]:
        scanned.append(path)
        return scan(path, text)

    monkeypatch.setattr(link_check, "_text_references", counted)
    return scanned


def test_only_an_edited_file_is_scanned_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml")
    scanned = _counting(monkeypatch)
    site, _ = read_site(config)
    first = check_problems(config, site)
    assert len(scanned) > 30
    scanned.clear()
    assert check_problems(config, site) == first
    assert scanned == []
    event = sorted((site_copy / "content" / "events").glob("*.md"))[0]
    event.write_text(
        event.read_text(encoding="utf-8") + "\n[Anmeldung](htps://example.org/a)\n", "utf-8"
    )
    site, _ = read_site(config)
    problems = check_problems(config, site)
    assert scanned == [event]
    line = len(event.read_text(encoding="utf-8").splitlines())
    assert [(p.path, p.line) for p in problems if p not in first] == [(event, line)]


def _check(folder: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(folder / "comms.toml"), "check"])
    return result.exit_code, result.stdout, result.stderr


def test_the_cache_changes_no_word_line_or_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(BAD, bad, ignore=shutil.ignore_patterns("var"))
    cold = _check(bad)
    assert (bad / CHECK_DIR).is_dir()
    assert cold[0] == 1 and "link to a page the build does not produce" in cold[1]
    assert _check(bad) == cold
    # Two lines more above the links: every message moves with them, cached or not.
    practice = bad / "practices" / "link-dead-internal.md"
    text = practice.read_text(encoding="utf-8")
    practice.write_text(text.replace("\n---\n", "\n---\n\nNeu.\n", 1), encoding="utf-8")
    warm = _check(bad)
    shutil.rmtree(bad / "var")
    assert _check(bad) == warm
    moved = [line for line in warm[1].splitlines() if line.startswith("practices/link-dead")]
    assert [line.split(":")[1] for line in moved] == ["10", "11", "13"]


def test_an_edited_catalog_is_checked_again(
    site_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locales = tmp_path / "locale"
    shutil.copytree(templating.LOCALES, locales)
    monkeypatch.setattr(templating, "LOCALES", locales)
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    assert check_problems(config, site) == []
    catalog = locales / "en" / "LC_MESSAGES" / "messages.po"
    lines = catalog.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(n for n, line in enumerate(lines, 1) if line == 'msgstr "Add to calendar"\n')
    lines[number - 1] = 'msgstr ""\n'
    catalog.write_text("".join(lines), encoding="utf-8")
    problems = check_problems(config, site)
    assert [(p.path, p.line, p.message) for p in problems] == [
        (catalog, number - 1, "no translation for 'Add to calendar'")
    ]
