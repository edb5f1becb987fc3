"""Formatting (Babel, DIN 5008), the message catalogs, and HTML → plain text."""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from babel.messages.extract import extract_from_dir

from comms.content.models import Event
from comms.core.config import load_config
from comms.core.languages import site_editions
from comms.publish import templating
from comms.publish.plaintext import html_to_text, wrap_lines
from comms.publish.render import render_confirmation
from comms.publish.templating import TEMPLATES, Formatter, translations

from .conftest import ROOT

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def fmt() -> Formatter:
    return Formatter(load_config(ROOT / "comms.toml"))


def _event(start: date, end: date | None = None) -> Event:
    return Event.model_validate(
        {
            "title": "T",
            "start": start,
            "end": end,
            "region": "landesweit",
            "organiser": "O",
            "summary": "S",
            "online": "https://example.org/live",
        }
    )


def test_event_dates_the_german_way(fmt: Formatter) -> None:
    ten = datetime(2020, 4, 16, 10, 0, tzinfo=BERLIN)
    assert fmt.event_when(_event(ten)) == "Donnerstag, 16. April 2020, 10:00\u00a0Uhr"
    noon = datetime(2020, 4, 16, 12, 30, tzinfo=BERLIN)
    assert fmt.event_when(_event(ten, noon)) == "Donnerstag, 16. April 2020, 10:00–12:30\u00a0Uhr"
    assert fmt.event_when(_event(date(2018, 6, 1))) == "Freitag, 1. Juni 2018"
    assert (
        fmt.event_when(_event(date(2018, 6, 1), date(2018, 6, 2)))
        == "Fr., 1.\u2009–\u2009Sa., 2. Juni 2018"
    )
    two_days = _event(
        datetime(2019, 8, 24, 10, 0, tzinfo=BERLIN), datetime(2019, 8, 25, 16, 0, tzinfo=BERLIN)
    )
    assert fmt.event_when(two_days) == (
        "Samstag, 24. August 2019, 10:00\u00a0Uhr\u2009–\u2009"
        "Sonntag, 25. August 2019, 16:00\u00a0Uhr"
    )
    assert (
        fmt.period(date(2019, 5, 13), date(2019, 7, 31)) == "13. Mai 2019\u2009–\u200931. Juli 2019"
    )
    # UTC in, Berlin out; summer time on the day after the switch.
    utc = datetime(2025, 3, 30, 1, 30, tzinfo=ZoneInfo("UTC"))
    assert fmt.moment(utc) == "Sonntag, 30. März 2025, 03:30\u00a0Uhr"
    assert fmt.money(6000) == "6.000\u00a0€"
    assert fmt.iso(ten) == "2020-04-16T10:00:00+02:00"


def test_every_interface_string_has_a_german_translation() -> None:
    found = extract_from_dir(
        str(ROOT),
        method_map=[("comms/**.py", "python"), ("comms/templates/**.j2", "jinja2")],
        options_map={"comms/templates/**.j2": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "translate": (2,)},
    )
    messages = {m[2] if isinstance(m[2], str) else m[2][0] for m in found}
    assert len(messages) > 50
    german = translations("de")
    untranslated = [m for m in sorted(messages) if german.gettext(m) == m and m not in SAME]
    assert untranslated == []


#: Words that German and English spell alike.
SAME = {
    "Online",
    "Region",
    "Organisation",
    "Website",
    "Website: %(title)s",
    "Newsletter",
    "Export",
    "Format",
    "Link",
}


def test_english_catalog(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('[site]\nlanguage = "en"\n', encoding="utf-8")
    config = load_config(tmp_path / "comms.toml")
    subject, html, text = render_confirmation(config, "https://newsletter.example.org/c/x")
    assert subject == "Please confirm your newsletter subscription"
    assert '<html lang="en" dir="ltr"' in html
    assert "Privacy policy: https://example.org/datenschutz" in text


def test_templates_folder_has_the_three_kinds() -> None:
    for folder, names in {
        "email": ["base.mjml.j2", "issue.mjml.j2", "confirmation.mjml.j2", "_event.mjml.j2"],
        "text": ["issue.txt.j2", "confirmation.txt.j2", "_practice.txt.j2", "_award.txt.j2"],
        "web": ["base.html.j2", "index.html.j2", "event.html.j2", "issue.html.j2"],
    }.items():
        for name in names:
            assert (TEMPLATES / folder / name).is_file()


def test_html_to_text() -> None:
    html = (
        '<p>Die <a href="https://example.org/a">Anmeldung</a> ist offen.</p>'
        "<ul><li>eins</li><li>zwei</li></ul>"
        "<table><tr><th>Zeit</th><th>Punkt</th></tr><tr><td>09:30</td><td>Kaffee</td></tr></table>"
        '<p>Mail an <a href="mailto:a@example.org">a@example.org</a></p>'
    )
    assert html_to_text(html) == (
        "Die Anmeldung <https://example.org/a> ist offen.\n\n"
        "- eins\n- zwei\n\n"
        "Zeit – Punkt\n09:30 – Kaffee\n\n"
        "Mail an a@example.org"
    )


def test_wrap_lines_keeps_indent_and_urls() -> None:
    long = "  " + "Wort " * 30
    url = "https://newsletter.example.org/" + "x" * 80
    wrapped = wrap_lines(f"{long}\n- {long.strip()}\n{url}\n-- ")
    lines = wrapped.split("\n")
    assert all(len(line) <= 78 for line in lines if line != url)
    assert lines[0].startswith("  Wort") and lines[1].startswith("  Wort")
    assert any(line.startswith("- Wort") for line in lines)
    assert url in lines
    assert lines[-1] == "-- "


@pytest.mark.parametrize("language", ["de", "en", "de-x-ls", "ar"])
def test_kept_wordings_are_babel_s_for_every_day_and_time(language: str) -> None:
    config = load_config(ROOT / "comms.toml")
    fmt = Formatter(config, site_editions(config).get(language))
    value = datetime(2019, 3, 30, 21, 7, tzinfo=ZoneInfo("UTC"))  # across a DST change
    for _ in range(400):
        value += timedelta(minutes=367)
        for moment in (value, value.replace(tzinfo=None)):  # a naive one is UTC to Babel
            pattern = fmt.patterns
            babel = {
                name: format_datetime(
                    moment, getattr(pattern, name), tzinfo=fmt.tz, locale=fmt.locale
                )
                for name in ("day", "short_day", "time")
            }
            assert (fmt.day(moment), fmt.short_day(moment), fmt.clock(moment)) == (
                babel["day"],
                babel["short_day"],
                babel["time"],
            )


def test_an_edited_template_is_seen_after_the_recheck_and_not_looked_at_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(templating.TEMPLATES, templates)
    monkeypatch.setattr(templating, "TEMPLATES", templates)
    monkeypatch.setattr(templating, "LOCALES", templates / "locale")
    templating.environment.cache_clear()
    try:
        page = templates / "web" / "style.css"
        env = templating.environment("web", "de")
        first = env.get_template("style.css").render()
        page.write_text("/* edited */\n", "utf-8")
        os.utime(page, (page.stat().st_mtime + 5,) * 2)  # a later time, whatever the clock
        looked: list[str] = []
        getmtime = os.path.getmtime

        def counted(path: Any) -> float:
            looked.append(str(path))
            return getmtime(path)

        monkeypatch.setattr(os.path, "getmtime", counted)
        monkeypatch.setattr(templating, "RECHECK", 3600.0)
        for _ in range(100):  # a build: the file is not looked at again
            assert env.get_template("style.css").render() == first
        assert looked == []
        monkeypatch.setattr(templating, "RECHECK", 0.0)  # `serve` a second later sees it
        assert env.get_template("style.css").render() == "/* edited */\n"
    finally:
        templating.environment.cache_clear()
