"""A series of events (`series:` in an event's front matter): one table of dates in an issue."""

from __future__ import annotations

import re
from pathlib import Path

from comms.content.site import read_site
from comms.content.translation_files import edition_site
from comms.core.config import Config, load_config
from comms.core.languages import site_editions
from comms.publish.archive import archive_files
from comms.publish.render import base_context, render_issue

from .test_caniemail import FORBIDDEN, KNOWN, USED, _data, lacking

GIFHORN = "2018-11-15-integrationsdialog-gifhorn"
STADTHAGEN = "2018-11-28-integrationsdialog-stadthagen"
LAATZEN = "2019-05-07-integrationsdialog-laatzen"


def series_issue(site_copy: Path) -> Config:
    """The sample with its November 2019 issue showing the three Integrationsdialog events,
    named out of date order, around another event; Laatzen takes registrations."""
    issue = site_copy / "content" / "issues" / "2019-11-newsletter.md"
    text = issue.read_text(encoding="utf-8")
    events = f"events: [{LAATZEN}, 2019-10-22-nemia-netzwerkkongress, {GIFHORN}, {STADTHAGEN}]"
    issue.write_text(text.replace("events: [2019-10-22-nemia-netzwerkkongress]", events), "utf-8")
    laatzen = site_copy / "content" / "events" / f"{LAATZEN}.md"
    text = laatzen.read_text(encoding="utf-8")
    laatzen.write_text(
        text.replace(
            "\nsummary:", "\nregistration: https://example.org/anmeldung/laatzen\nsummary:", 1
        ),
        "utf-8",
    )
    return load_config(site_copy / "comms.toml")


def test_events_of_a_series_are_one_table_of_dates(site_copy: Path) -> None:
    config = series_issue(site_copy)
    site, errors = read_site(config)
    assert [e.format() for e in errors if not e.warning] == []
    mail = render_issue(config, site, site.issues["2019-11-newsletter"])
    html = mail.html
    # One table with a caption, column headers and one row per event, soonest first.
    assert html.count('<table class="series"') == 1
    table = html[
        html.index('<table class="series"') : html.index(
            "</table>", html.index('<table class="series"')
        )
    ]
    assert "<caption" in table and "Termine der Reihe Integrationsdialog</caption>" in table
    assert table.count('<th scope="col"') == 3
    assert ">Termin</th>" in table and ">Ort</th>" in table and ">Anmeldung</th>" in table
    rows = re.findall(r'<th scope="row"[^>]*><a href="([^"]*)">([^<]*)</a></th>', table)
    assert [href.rsplit("/", 2)[-2] for href, _ in rows] == [GIFHORN, STADTHAGEN, LAATZEN]
    assert "15. November 2018" in rows[0][1]
    assert re.findall(r"<td[^>]*>(Gifhorn|Stadthagen|Laatzen)</td>", table) == [
        "Gifhorn",
        "Stadthagen",
        "Laatzen",
    ]
    assert '<a href="https://example.org/anmeldung/laatzen">Zur Anmeldung:' in table
    # No card of their own: the series' events are not repeated; the other event is a card.
    assert f"/{GIFHORN}/" not in html.replace(table, "")
    assert "NEMIA" in html.replace(table, "") or "Netzwerkkongress" in html.replace(table, "")
    # The plain-text part: the series as a list "Date – Place: URL".
    lines = mail.text.splitlines()
    start = lines.index("* Integrationsdialog")
    assert lines[start + 1] == "  Termine der Reihe Integrationsdialog:"
    # Each "Date – Place:", its URL on the next line (the text part wraps long lines there).
    listed = lines[start + 2 : start + 8]
    assert [line.split(" – ")[-1] for line in listed[::2]] == [
        "Gifhorn:",
        "Stadthagen:",
        "Laatzen:",
    ]
    assert listed[0].startswith("  - Donnerstag, 15. November 2018, 13:00")
    assert listed[1].strip().endswith(f"/{GIFHORN}/")
    assert listed[5].strip() == "https://example.org/anmeldung/laatzen"


def test_series_table_needs_nothing_major_clients_lack(site_copy: Path) -> None:
    config = series_issue(site_copy)
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues["2019-11-newsletter"]).html
    data = _data()
    assert [slug for slug, pattern in FORBIDDEN.items() if re.search(pattern, html)] == []
    surprises = [
        slug
        for slug, pattern in USED.items()
        if re.search(pattern, html) and slug not in KNOWN and lacking(data[slug])
    ]
    assert surprises == []


def test_series_table_on_the_web_archive(site_copy: Path) -> None:
    config = series_issue(site_copy)
    site, _ = read_site(config)
    files = archive_files(config, site, base_context(config))
    page = next(
        path for path in files if "2019-11-newsletter" in path and path.endswith("index.html")
    )
    html = files[page].decode()
    assert html.count("<table>") == 1
    assert "<caption>Termine der Reihe Integrationsdialog</caption>" in html
    assert html.count('<th scope="row">') == 3
    assert html.index(GIFHORN) < html.index(STADTHAGEN) < html.index(LAATZEN)


def test_a_bad_series_name_is_an_error_at_its_line(site_copy: Path) -> None:
    path = site_copy / "content" / "events" / f"{GIFHORN}.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("series: integrationsdialog", "series: Integrations Dialog"), "utf-8"
    )
    config = load_config(site_copy / "comms.toml")
    _, errors = read_site(config)
    found = [e.format(site_copy) for e in errors if not e.warning]
    assert found == [
        f"content/events/{GIFHORN}.md:9: field 'series': expected the short name of a series "
        "in lowercase letters, digits and hyphens (like 'integrationsdialog'), "
        "got 'Integrations Dialog'"
    ]


def test_series_table_mirrors_right_to_left(site_copy: Path) -> None:
    config = series_issue(site_copy)
    site, _ = read_site(config)
    arabic = site_editions(config).get("ar")
    shown = edition_site(site, "ar")
    html = render_issue(config, shown, shown.issues["2019-11-newsletter"], arabic).html
    table = html[html.index('<table class="series"') :]
    table = table[: table.index("</table>")]
    assert "مواعيد سلسلة Integrationsdialog</caption>" in table
    assert 'align="right"' in table and "text-align:left" not in table
