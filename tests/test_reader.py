"""Reader tests: every bad-content case gives its exact message at the right line."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comms.content import markup, reader
from comms.content.markup import markdown_to_html
from comms.content.models import KINDS, Event, Issue
from comms.content.reader import (
    OLD_ARCHETYPE_TEXTS,
    PLACEHOLDER_RE,
    _old_archetype_text,
    placeholder_errors,
    read_content,
    read_file,
)
from comms.core.config import DEFAULT_REGIONS, DEFAULT_TOPICS
from comms.core.errors import ContentError

from .conftest import BAD, ROOT
from .test_content_links import LINK_EXPECTED

TZ = ZoneInfo("Europe/Berlin")
CONTEXT = {"tz": TZ, "regions": set(DEFAULT_REGIONS), "topics": set(DEFAULT_TOPICS)}

EXPECTED = {
    "awards/wrong-number.md": [
        "awards/wrong-number.md:4: field 'prize_money': expected a whole number, got '6.000 Euro'",
        # Checks across fields run beside the field errors of the same file.
        "awards/wrong-number.md:7: field 'call.deadline': the deadline is before the call opens",
    ],
    "events/Bad_Name.md": [
        "events/Bad_Name.md:1: file name 'Bad_Name.md' is not a slug: use a-z, 0-9 and '-' only",
    ],
    "events/dup-slug.md": [
        "events/dup-slug.md:1: duplicate slug 'dup-slug' (also events/2019/dup-slug.md)",
    ],
    "events/duplicate-key.md": [
        "events/duplicate-key.md:8: duplicate key 'title' (first on line 2)",
    ],
    "events/2019-06-02-date-differs.md": [
        "events/2019-06-02-date-differs.md:3: warning: field 'start': the event starts on "
        "2019-06-03, but its file name says 2019-06-02: rename the file or correct the date",
    ],
    "events/empty.md": [
        "events/empty.md:1: empty file: expected front matter between '---' lines",
    ],
    "events/end-before-start.md": [
        "events/end-before-start.md:4: field 'end': the event ends before it starts "
        "(start 2019-06-03 10:00, end 2019-06-03 09:00)",
    ],
    "events/image-without-alt.md": [
        "events/image-without-alt.md:9: field 'image.alt': image without alt text",
    ],
    "events/impossible-date.md": [
        "events/impossible-date.md:3: field 'start': 2020-02-31: February 2020 has 29 days "
        "(dates are written YYYY-MM-DD or DD.MM.YYYY)",
    ],
    "events/impossible-german-date.md": [
        "events/impossible-german-date.md:8: field 'start': 31.02.2020: February 2020 has 29 "
        "days (dates are written YYYY-MM-DD or DD.MM.YYYY)",
    ],
    "events/missing-title.md": [
        "events/missing-title.md:1: field 'title': required field is missing",
    ],
    "events/never-closed.md": [
        "events/never-closed.md:1: front matter is never closed: add a '---' line after it",
    ],
    "events/no-front-matter.md": [
        "events/no-front-matter.md:1: missing front matter: the file must start with a '---' line",
    ],
    "events/not-utf8.md": [
        "events/not-utf8.md:4: not valid UTF-8 (byte 0xfc); save as UTF-8",
    ],
    "events/tab-indent.md": [
        "events/tab-indent.md:5: tab character in front matter: indent with spaces",
    ],
    "events/unknown-key.md": [
        "events/unknown-key.md:9: warning: unknown key 'speaker'",
    ],
    "events/unknown-region.md": [
        "events/unknown-region.md:5: field 'region': unknown region 'hamburg' "
        "(known: braunschweig, landesweit, leine-weser, lueneburg, weser-ems)",
    ],
    "events/unknown-topic.md": [
        "events/unknown-topic.md:8: field 'topics': unknown topic 'sport' (known: arbeit, "
        "bildung, engagement, frauen, gesundheit, kultur, sprache, teilhabe, wohnen)",
    ],
    "events/wrong-type.md": [
        "events/wrong-type.md:6: field 'topics': expected a list, got '5'",
    ],
    "events/yaml-syntax.md": [
        "events/yaml-syntax.md:4: YAML error: found unexpected end of stream "
        "(while scanning a quoted scalar on line 2); a quote is not closed: end the value with "
        "the same quote it starts with",
    ],
    "issues/bad-status.md": [
        "issues/bad-status.md:6: field 'send_at': expected a date and time "
        "(YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM), got '2019-07-01'",
        "issues/bad-status.md:7: field 'status': expected one of 'draft' or 'ready' "
        "(German: entwurf, bereit), got 'sent'",
    ],
    "issues/missing-reference.md": [
        "issues/missing-reference.md:9: field 'events': no event 'gibt-es-nicht' in events/",
        "issues/missing-reference.md:10: field 'practices': no practice 'auch-nicht' in practices/",
        "issues/missing-reference.md:11: field 'award': no award 'kein-preis' in awards/",
    ],
    "events/april-31.md": [
        "events/april-31.md:7: field 'start': 31.04.2020: April has 30 days "
        "(dates are written YYYY-MM-DD or DD.MM.YYYY)",
        "events/april-31.md:8: field 'end': 25:00: there is no hour 25 (times are written HH:MM)",
    ],
    "events/colon-in-title.md": [
        "events/colon-in-title.md:2: YAML error: mapping values are not allowed here; put the "
        "value in quotes, it contains ': ' (e.g. \"Konferenz: Sprache und Beruf\")",
    ],
    "events/placeholders.md": [
        "events/placeholders.md:5: placeholder from the archetype not replaced: "
        "[[Veranstaltungsort]]",
        "events/placeholders.md:6: placeholder from the archetype not replaced: "
        "[[Straße Nr., PLZ Ort]]",
        "events/placeholders.md:10: placeholder from the archetype not replaced: "
        "[[Ein oder zwei Sätze, worum es geht.]]",
        "events/placeholders.md:12: placeholder from the archetype not replaced: "
        "[[Beschreibung der Veranstaltung: Programm, Zielgruppe, Anmeldung.]]",
    ],
    # Every error of a file in one run: fields, status, placeholders and the body together.
    "events/every-error-at-once.md": [
        "events/every-error-at-once.md:5: field 'region': unknown region 'hamburg' "
        "(known: braunschweig, landesweit, leine-weser, lueneburg, weser-ems)",
        "events/every-error-at-once.md:6: field 'topics': unknown topic 'sport' (known: arbeit, "
        "bildung, engagement, frauen, gesundheit, kultur, sprache, teilhabe, wohnen)",
        "events/every-error-at-once.md:8: field 'status': expected one of 'planned', "
        "'cancelled' or 'postponed' (German: geplant, abgesagt, verschoben), got 'ausverkauft'",
        "events/every-error-at-once.md:9: placeholder from the archetype not replaced: "
        "[[Ein oder zwei Sätze, worum es geht.]]",
        "events/every-error-at-once.md:13: image without alt text: '/images/graffiti.jpg'",
    ],
    # Files made with the archetypes from before the [[…]] marks.
    "issues/old-archetype.md": [
        "issues/old-archetype.md:4: text from the archetype not replaced: "
        "'Ein Satz, der den Inhalt dieser Ausgabe ehrlich zusammenfasst.'",
        "issues/old-archetype.md:9: text from the archetype not replaced: "
        "'hier steht das Editorial.'",
    ],
    # Unreadable front matter: the body is still checked in the same run.
    "events/yaml-error-and-body.md": [
        "events/yaml-error-and-body.md:2: YAML error: mapping values are not allowed here; put "
        "the value in quotes, it contains ': ' (e.g. \"Werkstatt: Wohnen\")",
        "events/yaml-error-and-body.md:5: image without alt text: '/images/saal.jpg'",
        "events/yaml-error-and-body.md:7: placeholder from the archetype not replaced: "
        "[[Beschreibung der Veranstaltung: Programm, Zielgruppe, Anmeldung.]]",
    ],
    "events/registration-typo.md": [
        "events/registration-typo.md:7: field 'registration': expected an absolute http(s) URL, "
        "got 'htps://example.org/anmeldung'; did you mean 'https:'?",
    ],
    "issues/header-break.md": [
        "issues/header-break.md:3: field 'subject': contains a line break; it goes into a mail "
        "header: keep it one line",
        "issues/header-break.md:4: field 'preheader': contains the control character U+0009; "
        "it goes into a mail header",
    ],
    "issues/misspelt-reference.md": [
        "issues/misspelt-reference.md:8: field 'events': no event 'dup-slg' in events/; "
        "did you mean 'dup-slug'?",
        # The file exists but has errors: not "no event 'never-closed'".
        "issues/misspelt-reference.md:9: field 'events': events/never-closed.md has errors; "
        "see above",
    ],
    "practices/bad-contact-email.md": [
        "practices/bad-contact-email.md:8: field 'contact.email': 'u.meyer@example' is not a "
        "valid e-mail address: The part after the @-sign is not valid. It should have a period.",
    ],
    "practices/body-image-without-alt.md": [
        "practices/body-image-without-alt.md:11: image without alt text: '/images/film.jpg'",
    ],
}


def _read_bad() -> list[str]:
    _, errors = read_content(BAD, TZ, DEFAULT_REGIONS, DEFAULT_TOPICS)
    return sorted(e.format(BAD) for e in errors)


def test_every_bad_case_has_its_exact_message() -> None:
    expected = sorted(line for lines in EXPECTED.values() for line in lines)
    assert _read_bad() == expected


def test_every_bad_file_is_covered() -> None:
    files = {p.relative_to(BAD).as_posix() for p in BAD.rglob("*.md")}
    # The twin of dup-slug.md is valid on its own; its duplicate is the reported one.
    assert files - {"events/2019/dup-slug.md"} == set(EXPECTED) | set(LINK_EXPECTED)


def test_sample_content_is_valid() -> None:
    site, errors = read_content(ROOT / "content", TZ, DEFAULT_REGIONS, DEFAULT_TOPICS)
    assert errors == []
    assert len(site.events) >= 15
    assert len(site.practices) >= 6
    assert len(site.awards) >= 3
    assert len(site.issues) >= 3


def _write(tmp_path: Path, text: str | bytes, name: str = "x.md") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


EVENT = """---
title: Werkstatt
start: {start}
location: {{name: Rathaus, city: Gifhorn}}
region: braunschweig
topics: [bildung]
organiser: Bündnis
summary: Kurz.
---
Ein „Text“ mit "Anführungszeichen".
"""


def test_event_dates_are_local_and_aware(tmp_path: Path) -> None:
    item, errors = read_file(
        _write(tmp_path, EVENT.format(start="2020-04-16 10:00")), KINDS["event"], CONTEXT
    )
    assert errors == []
    assert isinstance(item, Event)
    assert item.start_at(TZ).isoformat() == "2020-04-16T10:00:00+02:00"
    assert not item.all_day


def test_event_with_offset_and_german_date(tmp_path: Path) -> None:
    item, _ = read_file(
        _write(tmp_path, EVENT.format(start="2020-04-16T08:00Z")), KINDS["event"], CONTEXT
    )
    assert isinstance(item, Event)
    assert item.start_at(TZ).astimezone(TZ).hour == 10
    item, _ = read_file(_write(tmp_path, EVENT.format(start="16.04.2020")), KINDS["event"], CONTEXT)
    assert isinstance(item, Event)
    assert item.all_day and item.start.isoformat() == "2020-04-16"


@pytest.mark.parametrize(
    ("written", "local"),
    [
        # ISO 8601 as tools write it: fractional seconds, with an offset or Z.
        ("2020-04-16T08:00:00.123+00:00", "2020-04-16T10:00:00.123000+02:00"),
        ("'2020-04-16T10:00:00.5+02:00'", "2020-04-16T10:00:00.500000+02:00"),
        ("2020-04-16T08:00:00,25Z", "2020-04-16T10:00:00.250000+02:00"),
        ("2020-04-16 10:00:30.123456", "2020-04-16T10:00:30.123456+02:00"),
    ],
)
def test_fractional_seconds_are_accepted(tmp_path: Path, written: str, local: str) -> None:
    item, errors = read_file(_write(tmp_path, EVENT.format(start=written)), KINDS["event"], CONTEXT)
    assert errors == []
    assert isinstance(item, Event)
    assert item.start_at(TZ).astimezone(TZ).isoformat() == local


def test_german_quotes_in_body(tmp_path: Path) -> None:
    item, _ = read_file(_write(tmp_path, EVENT.format(start="2020-04-16")), KINDS["event"], CONTEXT)
    assert item is not None
    assert "„Anführungszeichen“" in item.html.replace("&bdquo;", "„").replace("&ldquo;", "“")


def test_markdown_is_sanitised() -> None:
    html = markdown_to_html(
        '<script>alert(1)</script>\n\n<img src="x.png" alt="a" onerror="alert(1)">\n\n'
        '[Link](javascript:alert(1)) <a href="https://example.org" onclick="x()">ok</a>\n\n'
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert "<script" not in html and "alert(1)</" not in html
    assert "onerror" not in html and "onclick" not in html
    assert "javascript:" not in html
    assert '<a href="https://example.org">ok</a>' in html
    assert "<table>" in html


def test_unknown_nested_key_is_a_warning_and_item_survives(tmp_path: Path) -> None:
    text = EVENT.format(start="2020-04-16").replace(
        "location: {name: Rathaus, city: Gifhorn}",
        "location: {name: Rathaus, city: Gifhorn, floor: 2}",
    )
    item, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert item is not None
    assert [e.format(tmp_path) for e in errors] == ["x.md:4: warning: unknown key 'location.floor'"]


def test_reserved_keys_cannot_be_set(tmp_path: Path) -> None:
    text = EVENT.format(start="2020-04-16").replace("title: Werkstatt", "title: W\nslug: other")
    item, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert item is not None and item.slug == "x"
    assert [e.message for e in errors] == ["unknown key 'slug'"]


def test_bom_is_accepted(tmp_path: Path) -> None:
    raw = "\ufeff" + EVENT.format(start="2020-04-16")
    item, errors = read_file(_write(tmp_path, raw.encode("utf-8")), KINDS["event"], CONTEXT)
    assert item is not None and errors == []


def test_upcoming_events_for_issue() -> None:
    site, _ = read_content(ROOT / "content", TZ, DEFAULT_REGIONS, DEFAULT_TOPICS)
    scheduled = [i for i in site.issues.values() if i.upcoming_events_days]
    assert scheduled
    for issue in scheduled:
        events = site.issue_events(issue, TZ)
        assert len({e.slug for e in events}) == len(events)


def test_upcoming_events_follow_events_replaced_or_added_between_calls() -> None:
    site, _ = read_content(ROOT / "content", TZ, DEFAULT_REGIONS, DEFAULT_TOPICS)
    now = datetime(2020, 1, 15, tzinfo=TZ)

    def plain(days: int | None) -> list[str]:  # the rule, without the kept timeline
        limit = now + timedelta(days=days) if days is not None else None
        found = [
            e
            for e in site.events.values()
            if e.end_at(TZ) > now and (limit is None or e.start_at(TZ) <= limit)
        ]
        return [e.slug for e in sorted(found, key=lambda e: (e.start_at(TZ), e.slug))]

    for days in (None, 30, 365):
        assert [e.slug for e in site.upcoming_events(now, days)] == plain(days)
    soonest = site.upcoming_events(now)[0]
    site.events[soonest.slug] = soonest.model_copy(update={"start": date(2021, 5, 1)})
    assert [e.slug for e in site.upcoming_events(now)] == plain(None)
    assert site.upcoming_events(now)[-1].slug == soonest.slug
    site.events["new"] = soonest.model_copy(update={"slug": "new", "start": date(2020, 1, 20)})
    assert site.upcoming_events(now, 30)[0].slug == "new"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_random_bytes_only_give_content_errors(tmp_path: Path, data: bytes) -> None:
    for kind in KINDS.values():
        item, errors = read_file(_write(tmp_path, data), kind, CONTEXT)
        assert all(isinstance(e, ContentError) for e in errors)
        assert item is not None or errors


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.dates().map(str),
    st.sampled_from(["2020-02-31", "31.02.2020", "10:00", "landesweit"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    sorted({name for kind in KINDS.values() for name in kind.model.model_fields}) + ["x", "name"]
)


# No deadline: on a loaded 2-core CI machine single examples can exceed 200 ms.
@pytest.mark.slow
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(front=st.dictionaries(_keys, _values, max_size=10), body=st.text(max_size=200))
def test_random_yaml_only_gives_content_errors(
    tmp_path: Path, front: dict[str, object], body: str
) -> None:
    text = "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n" + body
    for kind in KINDS.values():
        item, errors = read_file(_write(tmp_path, text), kind, CONTEXT)
        assert all(isinstance(e, ContentError) for e in errors)
        assert item is not None or any(not e.warning for e in errors)


def test_issue_lines_point_at_list_elements() -> None:
    site, _ = read_content(BAD, TZ, DEFAULT_REGIONS, DEFAULT_TOPICS)
    issue = next(i for i in site.issues.values() if isinstance(i, Issue)) if site.issues else None
    assert issue is not None and issue.line("events.1") == 9


def test_decomposed_umlauts_are_normalised(tmp_path: Path) -> None:
    text = EVENT.format(start="2020-04-16").replace("title: Werkstatt", "title: Mu\u0308ller")
    item, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert isinstance(item, Event) and errors == []
    assert item.title == "M\u00fcller"


def test_cross_field_checks_run_beside_field_errors(tmp_path: Path) -> None:
    text = (
        EVENT.format(start="2020-04-16 10:00")
        .replace("topics: [bildung]", "topics: [sport]")
        .replace("location: {name: Rathaus, city: Gifhorn}\n", "end: 2020-04-15\n")
    )
    item, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert item is None
    assert sorted(e.format(tmp_path) for e in errors) == [
        "x.md:1: field 'location': required field is missing (or give 'online')",
        "x.md:4: field 'end': the event ends before it starts (start 2020-04-16 10:00, "
        "end 2020-04-15)",
        "x.md:6: field 'topics': unknown topic 'sport' (known: arbeit, bildung, engagement, "
        "frauen, gesundheit, kultur, sprache, teilhabe, wohnen)",
    ]


def test_markdown_is_safe_to_convert_in_several_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [
        f"# Titel {i}\n\n| a | b |\n|---|---|\n| {i} | „x“ |\n\n* eins\n* zwei {i}\n"
        for i in range(200)
    ]
    expected = [markdown_to_html(t) for t in texts]
    markdown_to_html.cache_clear()  # converted and cleaned again, in the threads
    markup.markdown_unsanitised.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(markdown_to_html, texts)) == expected


def test_a_body_read_again_is_sanitised_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies written from one template (and every body a preview reads again) cost one
    sanitising; the same text in another language is quoted, so sanitised, on its own."""
    cleaner = markup._cleaner()
    cleaned: list[str] = []

    class Counting:
        def clean(self, html: str) -> str:
            cleaned.append(html)
            return cleaner.clean(html)

    monkeypatch.setattr(markup, "_cleaner", Counting)
    text = f'Ein "Absatz" {uuid.uuid4()} <script>x</script>\n'
    first = markdown_to_html(text)
    assert markdown_to_html(text) == first and "<script>" not in first
    assert len(cleaned) == 1
    assert markdown_to_html(text, "en") != first
    assert len(cleaned) == 2


@pytest.mark.parametrize(
    ("word", "status"),
    [("abgesagt", "cancelled"), ("Verschoben", "postponed"), ("geplant", "planned")],
)
def test_german_event_status_words_are_understood(tmp_path: Path, word: str, status: str) -> None:
    text = EVENT.format(start="2020-04-16").replace("summary:", f"status: {word}\nsummary:")
    item, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert errors == [] and isinstance(item, Event) and item.status == status


def test_misspelt_region_gets_did_you_mean(tmp_path: Path) -> None:
    text = EVENT.format(start="2020-04-16").replace("braunschweig", "braunschwieg")
    _, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert [e.format(tmp_path) for e in errors] == [
        "x.md:5: field 'region': unknown region 'braunschwieg' (known: braunschweig, landesweit, "
        "leine-weser, lueneburg, weser-ems); did you mean 'braunschweig'?"
    ]


def test_misspelt_key_gets_did_you_mean(tmp_path: Path) -> None:
    text = EVENT.format(start="2020-04-16").replace("organiser:", "organizer:")
    _, errors = read_file(_write(tmp_path, text), KINDS["event"], CONTEXT)
    assert sorted(e.format(tmp_path) for e in errors) == [
        "x.md:1: field 'organiser': required field is missing",
        "x.md:7: warning: unknown key 'organizer'; did you mean 'organiser'?",
    ]


def test_a_front_matter_read_twice_is_parsed_once_and_handed_out_as_a_copy(
    tmp_path: Path,
) -> None:
    """The parse cache (`front_matter._parsed`) never lets one reader's edits reach another."""
    from comms.content import front_matter

    text = f"title: Cache {uuid.uuid4()}\ntopics: [sprache]\n"
    before = front_matter._parsed.cache_info()
    first = front_matter.parse_yaml(text, tmp_path / "a.md")
    second = front_matter.parse_yaml(text, tmp_path / "b.md")
    assert not isinstance(first, ContentError) and not isinstance(second, ContentError)
    assert front_matter._parsed.cache_info().hits == before.hits + 1
    first[0]["topics"].append("arbeit")
    assert second[0] == {"title": text.split(": ", 1)[1].split("\n")[0], "topics": ["sprache"]}
    big = "title: x\nbody: " + "y" * front_matter.CACHED_TEXT + "\n"
    front_matter.parse_yaml(big, tmp_path / "c.md")
    assert front_matter._parsed.cache_info().currsize == before.currsize + 1  # not kept


def test_button_class_is_the_only_class_an_editor_may_give() -> None:
    html = markdown_to_html(
        "[Jetzt anmelden](https://example.org/a?b=1){.button}\n\n"
        '[x](https://example.org/x){.other} <a class="button evil" href="/y">y</a>'
    )
    assert '<p><a class="button" href="https://example.org/a?b=1">Jetzt anmelden</a></p>' in html
    # Any other class, or more than the one, is dropped by the sanitiser.
    assert '<a href="https://example.org/x">x</a>{.other}' in html
    assert '<a href="/y">y</a>' in html


#: Lines that hold archetype texts as editors leave them: any case, quoted, after a key.
ARCHETYPE_LINE = st.builds(
    lambda text, case, key, quote: f"{key}{quote}{case(text)}{quote}",
    st.sampled_from(sorted(OLD_ARCHETYPE_TEXTS)),
    st.sampled_from([str.upper, str.title, str.swapcase, str.lower, str.capitalize]),
    st.sampled_from(["", "summary: ", "  name: ", "- "]),
    st.sampled_from(["", '"', "'"]),
)
OTHER_LINE = st.text(alphabet=st.sampled_from(list("aä Ü[]:-ßx'")), max_size=30)


@given(st.lists(ARCHETYPE_LINE | OTHER_LINE | st.just("[[Ort]]"), max_size=8))
def test_placeholders_are_found_on_every_line_that_has_one(lines: list[str]) -> None:
    """The whole-text test that skips most files misses no line the line rules report."""
    expected = {
        number
        for number, line in enumerate(lines, start=1)
        if PLACEHOLDER_RE.search(line) or _old_archetype_text(line) is not None
    }
    found = {error.line for error in placeholder_errors("\n".join(lines), Path("x.md"))}
    assert found == expected
    assert any(_old_archetype_text(line) for line in lines) <= bool(found)


def test_a_body_s_limits_are_checked_once_per_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files with the same body (written from one template) check its limits once, and a
    body over a limit is still refused at its line in each file."""
    checked: list[str] = []
    check = markup.markdown_problems

    def counting(text: str) -> list[tuple[int, str]]:
        checked.append(text)
        return check(text)

    monkeypatch.setattr(markup, "markdown_problems", counting)
    monkeypatch.setattr(reader, "markdown_problems", counting)
    body = f"Programm {uuid.uuid4()} mit „Zitat“.\n"
    for name in ("a.md", "b.md"):
        item, errors = read_file(
            _write(tmp_path, EVENT.format(start="2020-04-16") + body, name), KINDS["event"], CONTEXT
        )
        assert item is not None and errors == []
    assert len(checked) == 1 and checked[0].endswith(body)
    costly = f"{uuid.uuid4()}\n\n" + "> " * 40 + "tief\n"
    for name in ("c.md", "d.md"):
        _, errors = read_file(
            _write(tmp_path, EVENT.format(start="2020-04-16") + costly, name),
            KINDS["event"],
            CONTEXT,
        )
        assert [(e.line, e.message) for e in errors] == [
            (13, "blockquotes ('>') nested more than 32 deep")
        ]
