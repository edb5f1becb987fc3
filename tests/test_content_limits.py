"""Hostile or careless content: YAML aliases, body and block limits, bounded Markdown, JSON-LD."""

from __future__ import annotations

import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from comms.cli import cli
from comms.content.markup import (
    MARKS,
    MAX_BLOCK,
    MAX_BODY,
    MAX_MARKS,
    MAX_OPEN,
    markdown_problems,
    markdown_to_html,
)
from comms.content.models import KINDS
from comms.content.reader import read_file
from comms.core.config import DEFAULT_REGIONS, DEFAULT_TOPICS

CONTEXT = {
    "tz": ZoneInfo("Europe/Berlin"),
    "regions": set(DEFAULT_REGIONS),
    "topics": set(DEFAULT_TOPICS),
}
FRONT = """---
title: Werkstatt
start: 2020-04-16 10:00
location: {name: Rathaus, city: Gifhorn}
region: braunschweig
topics: [bildung]
organiser: Bündnis
summary: Kurz.
"""


def _read(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "x.md"
    path.write_text(text, encoding="utf-8")
    _, errors = read_file(path, KINDS["event"], CONTEXT)
    return [e.format(tmp_path) for e in errors]


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_at_their_line(tmp_path: Path) -> None:
    # Refused, not expanded: 9**12 strings would not fit in memory (bench/content_limits.py).
    errors = _read(tmp_path, FRONT + _laughs(12) + "---\nText.\n")
    assert errors == [
        "x.md:9: YAML error: anchors and aliases (&name, *name) are not allowed in front "
        "matter; write the value out"
    ]


def test_a_self_referencing_alias_is_an_error_not_a_crash(tmp_path: Path) -> None:
    errors = _read(tmp_path, FRONT + "extra: &loop\n  - *loop\n---\nText.\n")
    assert errors == [
        "x.md:9: YAML error: anchors and aliases (&name, *name) are not allowed in front "
        "matter; write the value out"
    ]


def test_comms_check_survives_an_alias_bomb(site_copy: Path) -> None:
    bomb = site_copy / "content" / "events" / "2030-01-01-bombe.md"
    bomb.write_text(FRONT + _laughs(14) + "---\nText.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(site_copy / "comms.toml"), "check"])
    assert result.exit_code == 1
    assert "2030-01-01-bombe.md:9: YAML error: anchors and aliases" in result.stdout


def test_a_body_over_the_limit_is_an_error(tmp_path: Path) -> None:
    body = ("Ein Satz. " * 500 + "\n\n") * (MAX_BODY // 5000 + 1)
    errors = _read(tmp_path, FRONT + "---\n" + body)
    assert errors == [
        f"x.md:10: the body has {len(body):,} characters; at most {MAX_BODY:,} are allowed"
    ]


def test_a_block_over_the_limit_is_an_error_at_its_line(tmp_path: Path) -> None:
    body = "Erster Absatz.\n\n" + "Wort " * (MAX_BLOCK // 5 + 1) + "\n"
    assert _read(tmp_path, FRONT + "---\n" + body) == [
        f"x.md:12: a block of {len(body) - 16:,} characters without a blank line; "
        f"at most {MAX_BLOCK:,} are allowed: split it with blank lines"
    ]


def test_deep_blockquotes_are_an_error_at_their_line(tmp_path: Path) -> None:
    body = "Absatz.\n\n> Zitat\n\n" + "> " * 40 + "tief\n"
    assert _read(tmp_path, FRONT + "---\n" + body) == [
        "x.md:14: blockquotes ('>') nested more than 32 deep"
    ]


#: Bodies over a limit of comms.content.markup, each in a shape that is slow to render.
PATHOLOGICAL = {
    "8000-brackets": "[" * 8000,
    "images": "![" * 4000,
    "links-open": "[a](" * 2000,
    "nested": "[" * 4000 + "]" * 4000,
    "200-kb-links": "Absatz mit [Link](https://example.org) und (Klammer).\n\n" * 3000,
    "200-kb-text": ("Wort " * 1000 + "\n\n") * 40,
    "quotes": ('"a ' * 3000 + "\n\n") * 10,
    "blockquotes": (">" * 9000 + "\n\n") * 10,
    "backticks": ("`a " * 3000 + "\n\n") * 10,
    "many-small-blocks": ("'" * 900 + "\n\n") * 90,
}


@pytest.mark.parametrize("body", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_bodies_are_refused(tmp_path: Path, body: str) -> None:
    """Refused before rendering; bench/content_limits.py times them against a plain body."""
    errors = _read(tmp_path, FRONT + "---\n" + body)
    assert errors, "each of these is over a limit"
    with pytest.raises(ValueError):
        markdown_to_html(body)


def test_bodies_within_the_limits_still_render(tmp_path: Path) -> None:
    body = "Absatz mit [Link](https://example.org) und „Zitat“ (Klammer).\n\n" * 900
    assert _read(tmp_path, FRONT + "---\n" + body) == []
    assert markdown_to_html("[" * 32 + "x" + "]" * 32).count("[") == 32


def test_json_ld_cannot_break_out_of_its_script_element(site_copy: Path) -> None:
    slug = "2030-01-01-boese"
    hostile = "<!--<script> </script><b>&amp; x"
    (site_copy / "content" / "events" / f"{slug}.md").write_text(
        FRONT.replace("summary: Kurz.", f"summary: '{hostile}'").replace(
            "title: Werkstatt", f"title: '{hostile}'"
        )
        + "---\nText.\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(site_copy / "comms.toml"), "build"])
    assert result.exit_code == 0, result.output
    page = (site_copy / "public" / "events" / slug / "index.html").read_text(encoding="utf-8")
    match = re.search(r'<script type="application/ld\+json">\n(.*?)\n</script>', page, re.S)
    assert match is not None
    assert not re.search(r"[<>&]", match.group(1))
    data = json.loads(match.group(1))
    assert data["name"] == hostile and data["description"] == hostile
    assert "<footer" in page[match.end() :]  # the rest of the page is still there


def _block_rules(text: str) -> list[int]:
    """The lines of the blocks the per-block limits refuse, walked as the rules read."""
    lines, start, line = [], 0, 1
    for blank in [*re.finditer(r"\n[ \t]*\n", text), None]:
        end = len(text) if blank is None else blank.start()
        block = text[start:end]
        depth = {"[": 0, "(": 0}
        deepest = 0
        for char in block:
            if char in depth:
                depth[char] += 1
                deepest = max(deepest, depth[char])
            elif char == "]" and depth["["]:
                depth["["] -= 1
            elif char == ")" and depth["("]:
                depth["("] -= 1
        marks = sum(block.count(mark) for mark in MARKS)
        if len(block) > MAX_BLOCK or marks > MAX_MARKS or deepest > MAX_OPEN:
            lines.append(line)
        if blank is not None:
            line += text.count("\n", start, blank.end())
            start = blank.end()
    return lines


_RUNS = st.integers(1, 40)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["[", "(", "]", ")", "*", "a", "\n", "\n\n"]), st.integers(1, 40)
        ),
        max_size=40,
    )
)
def test_no_block_over_a_limit_is_missed(runs: list[tuple[str, int]]) -> None:
    text = "".join(part * count for part, count in runs)
    if len(text) > MAX_BODY:
        return
    found = [line for line, _ in markdown_problems(text)]
    if any(
        message.startswith(("the body", "blockquotes")) for _, message in markdown_problems(text)
    ):
        return  # refused as a whole before its blocks are looked at
    assert found == _block_rules(text)
