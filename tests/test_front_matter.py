"""Front matter parsed by libyaml (the fast path) gives what the pure-Python loader gives:
the same data, the same line of every node and the same error at the same line."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
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


#: Front matters the plain walk must build as PyYAML's constructor does, or leave to it: every
#: implicit scalar form, explicit tags, merge and value keys, keys that are not text, equal
#: keys of different types, repeated keys and nesting deeper than the walk goes.
CONSTRUCTED = [
    "a: 0x1F\nb: 0o17\nc: 1_000\nd: 1:30\ne: .inf\nf: -.Inf\ng: .nan\nh: ~\ni: null\nj: yes\n",
    "k: No\nl: ''\nm:\nn: 1e3\no: 1.5e+3\np: +12\nq: -0b101\nr: 0b2\ns: 190:20:30\nt: 0o8\n",
    "a: 2020-04-16\nb: 2020-04-16 10:00\nc: 'q'\nd: \"r\"\ne: |\n  lit\nf: >\n  fold\n",
    "<<: {a: 1}\nb: 2\n",
    "=: 3\n",
    "a: !!str 12\nb: !!int '12'\nc: !!float '1'\nd: !!bool 'yes'\ne: !!null ''\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!set {x, y}\n",
    "a: !!omap [x: 1]\n",
    "a: !!timestamp 2020-01-01\n",
    "a: !!map {x: 1}\nb: !!seq [1]\n",
    "1: a\n1.0: b\ntrue: c\nnull: d\n",
    "a: 1\na: 2\nb: [1, {c: [2, {d: null}]}]\n",
    "a: " + "[" * 40 + "]" * 40 + "\n",
    "a: " + "{b: " * 40 + "1" + "}" * 40 + "\n",
]


def _typed(data: Any) -> Any:
    """Data with the type of every value and key spelt out (1, 1.0 and True compare equal)."""
    if isinstance(data, dict):
        return [(_typed(key), _typed(value)) for key, value in data.items()]
    if isinstance(data, list):
        return [_typed(value) for value in data]
    return type(data).__name__, data if data == data else "nan"


@pytest.mark.parametrize("text", CONSTRUCTED)
def test_front_matter_data_is_what_pyyaml_s_constructor_makes(text: str) -> None:
    """The walk that replaced PyYAML's constructor for plain trees changes no value or type,
    on a miss and on a hit of the parse cache."""
    expected = _typed(yaml.load(text, Loader=front_matter.Loader))
    front_matter._parsed.cache_clear()
    for _ in range(2):
        parsed = parse_yaml(text, Path("x.md"))
        assert not isinstance(parsed, ContentError)
        assert _typed(parsed[0]) == expected


def test_a_cold_read_hands_out_the_parsed_data_without_copying_it() -> None:
    """A text read once (every file of a cold build) is never deep-copied; a second reader
    still gets data of its own."""
    text = f"title: Kalt {uuid.uuid4()}\ntopics: [sprache]\nlocation:\n  name: Rathaus\n"
    with mock.patch("copy.deepcopy", side_effect=AssertionError("copied")):
        first = parse_yaml(text, Path("a.md"))
        second = parse_yaml(text, Path("b.md"))
    assert not isinstance(first, ContentError) and not isinstance(second, ContentError)
    assert first[0] == second[0] and first[0]["topics"] is not second[0]["topics"]
    assert first[0]["location"] is not second[0]["location"]


def test_readers_in_threads_never_share_front_matter_data() -> None:
    """The data a parse made goes to one reader only, whichever thread asks first."""
    texts = [f"title: T {uuid.uuid4()}\ntopics: [a, b]\n<<: {{x: 1}}\n" for _ in range(3)]
    texts += [f"title: T {uuid.uuid4()}\ntopics: [a, b]\n" for _ in range(3)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda text: parse_yaml(text, Path("x.md")), texts * 20))
    lists = [result[0]["topics"] for result in results if isinstance(result, tuple)]
    assert len(lists) == len(texts) * 20
    assert len({id(topics) for topics in lists}) == len(lists)
