"""The calendar writer's fold and serializer: the bytes icalendar writes, in less time."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar.parser import Contentline

from comms.publish.calendars import folded, serialized

#: Text that meets every rule of the fold: multi-byte characters, escapes, long runs.
TEXT = st.text(
    alphabet=st.sampled_from(["a", "Ü", "€", "😀", "\\", "^", ",", ";", " ", "ع", "n"]),
    max_size=400,
)


def _icalendar_fold(line: str) -> bytes:
    """The line as icalendar itself folds it, with its CRLF."""
    data: bytes = Contentline(line).to_ical()  # type: ignore[no-untyped-call]
    return data + b"\r\n"


@given(TEXT)
def test_the_fold_gives_icalendar_s_bytes(text: str) -> None:
    line = f"DESCRIPTION:{text}"
    assert folded(line) == _icalendar_fold(line)


@pytest.mark.parametrize("tail", ["\\", "^", "ä", "😀"])
def test_the_fold_at_every_length_and_boundary(tail: str) -> None:
    for length in range(160):
        _same_fold("X" * length + tail + "y" * 80)


def _same_fold(line: str) -> None:
    assert folded(line) == _icalendar_fold(line)
    for part in folded(line).split(b"\r\n"):
        assert len(part) <= 75
        part.decode("utf-8")  # never within a character


def test_a_component_serializes_as_to_ical() -> None:
    event = icalendar.Event()
    event.add("uid", "tag:example.org,2015:event/x")
    event.add("dtstamp", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC))
    event.add("summary", "Ünïcode, commas; and a backslash \\ " * 5, parameters={"LANGUAGE": "de"})
    event.add("description", "Zeile eins\nZeile zwei: " + "€" * 60)
    event.add("categories", ["Sprache", "Arbeit, Bildung"])
    assert serialized(event) == event.to_ical()
