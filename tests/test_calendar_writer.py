"""The calendar writer's fold and serializer: the bytes icalendar writes, in less time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar.parser import Contentline

from comms.publish.calendars import folded, serialized, vevent

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


BERLIN = ZoneInfo("Europe/Berlin")
MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(BERLIN)
)
#: When an event takes place: a day (all-day) or a local date-time, with or without an end.
WHEN = st.one_of(
    st.tuples(st.dates(), st.none() | st.dates()),
    st.tuples(MOMENTS, st.none() | MOMENTS),
)
LANGUAGE = st.sampled_from([{}, {"LANGUAGE": "en"}, {"LANGUAGE": "de-x-ls"}, {"LANGUAGE": "ar"}])


@settings(max_examples=60, deadline=None)
@given(
    when=WHEN,
    stamp=st.datetimes(timezones=st.sampled_from([UTC, BERLIN])),
    sequence=st.integers(min_value=0, max_value=10_000),
    texts=st.tuples(TEXT, TEXT, TEXT),
    language=LANGUAGE,
    labels=st.lists(TEXT, max_size=3),
    status=st.sampled_from(["CONFIRMED", "TENTATIVE", "CANCELLED"]),
)
def test_a_vevent_is_the_one_icalendar_writes(
    when: tuple[date, date | None],
    stamp: datetime,
    sequence: int,
    texts: tuple[str, str, str],
    language: dict[str, str],
    labels: list[str],
    status: str,
) -> None:
    """The calendars' own VEVENT writer gives icalendar's bytes for the properties it writes
    (dates, UTC stamps, texts with a LANGUAGE, categories, URL), in icalendar's order."""
    start, end = when
    summary, place, description = texts
    properties: list[tuple[str, Any, dict[str, str]]] = [
        ("uid", f"urn:uuid:{sequence}", {}),
        ("dtstamp", stamp, {}),
        ("last-modified", stamp + timedelta(hours=1), {}),
        ("created", stamp, {}),
        ("sequence", sequence, {}),
        ("dtstart", start, {}),
    ]
    if end is not None:
        properties.append(("dtend", end, {}))
    properties += [
        ("summary", summary, language),
        ("location", place, {}),
        ("description", description, language),
        ("url", f"https://example.org/{sequence}/" + "x" * (sequence % 90), {}),
        ("status", status, {}),
    ]
    if labels:
        properties.append(("categories", labels, {}))
    reference = icalendar.Event()
    for name, value, parameters in properties:
        reference.add(name, value, parameters=dict(parameters))
    assert vevent(properties) == reference.to_ical()
