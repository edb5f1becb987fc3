"""Display names as they go into headers: the ASCII fast path keeps the general rule."""

from __future__ import annotations

import unicodedata

import pytest

from comms.core.names import NAME_MAX, clean_name


def _general(text: str) -> str:
    """The rule spelt out: spaces collapsed, control and format characters dropped, NFC."""
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category in {"Zl", "Zp"} or char.isspace():
            kept.append(" ")
        elif category not in {"Cc", "Cf", "Cs", "Co"}:
            kept.append(char)
    return " ".join("".join(kept).split())[:NAME_MAX].rstrip()


@pytest.mark.parametrize(
    "text",
    [
        "Anna Muster",
        "  Anna   Muster  ",
        "Anna\tMuster\r\n",
        "Anna\x7fMuster\x00",
        'O\'Brien, "Dr." <x>',
        "x" * 99 + " y",
        "a " * 80,
        "".join(chr(c) for c in range(128)),
        "Jürgen\u202e Groß",
    ],
)
def test_clean_name_follows_the_general_rule(text: str) -> None:
    assert clean_name(text) == _general(text)
