"""Front matter parsed by libyaml (the fast path) gives what the pure-Python loader gives:
the same data, the same line of every node and the same error at the same line."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from comms.content import front_matter
from comms.content.front_matter import parse_yaml
from comms.core.errors import ContentError

#: Front matter lines as editors write them, right and wrong: keys, lists, quotes, colons.
LINE = st.sampled_from(
    [
        "title: Konferenz",
        "title: Konferenz: Sprache und Beruf",
        'title: "Ein „Titel“ mit Zitat"',
        "title: 'nicht geschlossen",
        'summary: "Zitat" und mehr',
        "start: 2020-04-16 10:00",
        "end: 2020-04-16",
        "end: 2020-04-16 18:00:00",
        "number: 12",
        "online: true",
        "topics: [sprache, arbeit",
        "topics: [sprache, arbeit]",
        "events:",
        "  - eins",
        "  - zwei",
        "location:",
        "  name: Rathaus",
        "  address: Markt 1",
        "   city: verrutscht",
        "- ohne Schlüssel",
        "key: @value",
        "key: `value`",
        "title: Konferenz",
        "",
        "# Kommentar",
        "text: |",
        "  Zeile",
        "{offen: 1",
    ]
)


def _pure(text: str) -> Any:
    """parse_yaml with libyaml switched off: the pure-Python loader's answer."""
    front_matter._parsed.cache_clear()
    with mock.patch.object(front_matter, "_fast_path", return_value=False):
        result = parse_yaml(text, Path("x.md"))
    front_matter._parsed.cache_clear()
    return result


def _lines(node: yaml.Node) -> list[tuple[int, int]]:
    """Every node's start and end line, depth first."""
    found = [(node.start_mark.line, node.end_mark.line)]
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found += _lines(key) + _lines(value)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            found += _lines(child)
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=8))
def test_the_fast_loader_gives_the_pure_loader_s_data_lines_and_errors(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    front_matter._parsed.cache_clear()
    fast = parse_yaml(text, Path("x.md"))
    pure = _pure(text)
    if isinstance(pure, ContentError):
        assert fast == pure
    else:
        assert not isinstance(fast, ContentError)
        assert fast[0] == pure[0]
        assert _lines(fast[1].node) == _lines(pure[1].node)
