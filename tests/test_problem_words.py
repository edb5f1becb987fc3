"""Problems in the site's language for the preview: the German problem catalog covers what
`comms check` says about the bad-content corpus, and frames field names and warnings."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po

from comms.content.reader import read_content
from comms.core.config import DEFAULT_REGIONS, DEFAULT_TOPICS
from comms.core.errors import ContentError
from comms.publish.problem_words import catalog_file, problem_line, worded

from .conftest import BAD
from .test_content_links import LINK_EXPECTED


def test_every_problem_of_the_bad_content_is_worded_in_german() -> None:
    _, errors = read_content(BAD, ZoneInfo("Europe/Berlin"), DEFAULT_REGIONS, DEFAULT_TOPICS)
    assert len(errors) > 40
    messages = [e.message for e in errors]
    # The link and image checks' messages of the same corpus (tests/test_content_links.py).
    for lines in LINK_EXPECTED.values():
        messages += [line.split(": ", 1)[1].removeprefix("warning: ") for line in lines]
    english = [message for message in messages if worded("de", message) == message]
    assert english == []


def test_field_warning_and_nested_wording() -> None:
    root = Path("/site")
    problem = ContentError(
        root / "content/events/x.md",
        3,
        "2020-02-31: February 2020 has 29 days (dates are written YYYY-MM-DD or DD.MM.YYYY)",
        field="start",
    )
    assert problem_line(problem, root, "de") == (
        "content/events/x.md:3: Feld 'start': 2020-02-31: der Februar 2020 hat 29 Tage "
        "(Datumsangaben: YYYY-MM-DD oder DD.MM.YYYY)"
    )
    warning = ContentError(
        root / "a.md", 2, "unknown key 'titel'; did you mean 'title'?", warning=True
    )
    assert problem_line(warning, root, "de") == (
        "a.md:2: Warnung: unbekannter Schlüssel 'titel'; gemeint ist wohl 'title'"
    )
    # A language without a problem catalog, and a message no pattern matches: as comms check.
    assert problem_line(warning, root, "en") == warning.format(root)
    odd = ContentError(root / "a.md", 1, "something new: not in the catalog")
    assert problem_line(odd, root, "de") == odd.format(root)


def test_the_catalog_uses_only_the_placeholders_of_its_patterns() -> None:
    with catalog_file("de").open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id:
            continue
        assert isinstance(message.id, str) and isinstance(message.string, str)
        assert message.string, message.id
        names = set(re.findall(r"\{(\w+)\}", message.id))
        assert set(re.findall(r"\{(\w+)\}", message.string)) <= names, message.id
