"""Front matter values changed in place: only the changed value's text changes, comments, key
order, quotes and the body stay as the file had them."""

from __future__ import annotations

from comms.content.front_matter_edit import read_front_matter, scalar, set_values, with_body

FILE = """---
title: 'Ein Titel'   # a comment after the value
# A comment line.
events:
  - eins
  - zwei
award:
topics: [kultur]
---
Der Text.
"""


def _set(changes: dict[str, str | list[str]], text: str = FILE) -> str:
    front = read_front_matter(text)
    assert front is not None
    return set_values(text, front, changes)


def test_nothing_changed_is_the_same_text() -> None:
    assert _set({}) == FILE


def test_a_value_changes_on_its_line_keeping_its_quote_and_comment() -> None:
    changed = _set({"title": scalar("Neuer Titel", "'")})
    assert changed == FILE.replace("'Ein Titel'", "'Neuer Titel'")
    quoted = _set({"title": scalar("Titel: mit Doppelpunkt")})
    assert 'title: "Titel: mit Doppelpunkt"   # a comment after the value\n' in quoted


def test_lists_keep_their_style_and_an_emptied_one_becomes_brackets() -> None:
    changed = _set({"events": ["drei", "eins"], "topics": ["kultur", "sprache"]})
    assert "events:\n  - drei\n  - eins\naward:\n" in changed
    assert "topics: [kultur, sprache]\n" in changed
    emptied = _set({"events": []})
    assert "# A comment line.\nevents: []\naward:\n" in emptied


def test_an_empty_key_gets_its_value_and_a_missing_key_goes_before_the_fence() -> None:
    changed = _set({"award": "sonderpreis-2020", "summary": scalar("Kurz gesagt.")})
    assert "award: sonderpreis-2020\n" in changed
    assert changed.endswith("topics: [kultur]\nsummary: Kurz gesagt.\n---\nDer Text.\n")


def test_the_body_is_replaced_after_the_fence() -> None:
    front = read_front_matter(FILE)
    assert front is not None and front.body(FILE) == "Der Text.\n"
    assert with_body(FILE, front, "Neu.\n") == FILE.replace("Der Text.\n", "Neu.\n")


def test_text_yaml_would_read_otherwise_is_quoted() -> None:
    assert scalar("2020") == '"2020"'
    assert scalar("ja # nein") == '"ja # nein"'
    assert scalar("Schön") == "Schön"
    assert scalar("") == '""'


def test_the_schedule_rewrites_send_at_keeping_its_comment_and_the_body() -> None:
    text = (
        "---\n"
        "number: 3\n"
        "# When the scheduler sends it once status is ready (YYYY-MM-DD HH:MM).\n"
        "send_at: 2020-02-04 09:00  # morning\n"
        "events:\n"
        "  - a\n"
        "---\n"
        "send_at: in the body stays\n"
    )
    front = read_front_matter(text)
    assert front is not None
    assert set_values(text, front, {"send_at": "2026-12-09 07:30"}) == text.replace(
        "send_at: 2020-02-04 09:00  # morning", "send_at: 2026-12-09 07:30  # morning"
    )
