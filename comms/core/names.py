"""Display names as people type them, made safe for headers, pages and files."""

from __future__ import annotations

import unicodedata

#: Longest name kept (characters); longer ones are cut. Real names are far shorter; the limit
#: keeps a hostile one from filling headers, pages and exports.
NAME_MAX = 100

# Line and paragraph separators count as space; other control, format (bidi overrides,
# zero-width), surrogate and private-use characters are dropped.
_SPACES = {"Zl", "Zp"}
_DROPPED = {"Cc", "Cf", "Cs", "Co"}


def clean_name(text: str | None, limit: int = NAME_MAX) -> str:
    """`text` without control characters, with single spaces, NFC, at most `limit` characters."""
    if not text:
        return ""
    if text.isascii() and text.isprintable():  # most names: nothing to drop or normalise
        return " ".join(text.split())[:limit].rstrip()
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category in _SPACES or char.isspace():
            kept.append(" ")
        elif category not in _DROPPED:
            kept.append(char)
    return " ".join("".join(kept).split())[:limit].rstrip()
