"""The desk's writing pages over real HTTP with the real app and a real git repository: the
front matter as form fields that save files byte for byte as they were, conflicts, the
problems endpoint (read-only, file lines), refused saves, and new files from the archetypes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from comms.content.reader import TRANSLATION_NAME, content_files

from .deskkit import ISSUE, SECRET, DeskSite, Person, csrf, open_desk

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sqlite_only("the writing pages' files and git; the storage has its own tests"),
]

EVENT = "2020-04-16-schwerpunktkonferenz-sprachliche-und-berufliche-integration"


@pytest.fixture
def desk_site(site_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeskSite]:
    monkeypatch.setenv("COMMS_SECRET_KEY", SECRET)
    _git(site_copy, "init", "--quiet")
    _git(site_copy, "add", "content")
    _git(site_copy, "commit", "--quiet", "-m", "Start")
    with open_desk(site_copy) as site:
        yield site


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Setup", "-c", "user.email=setup@example.org",
         *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def log_in(site: DeskSite, person: Person) -> requests.Session:
    """A browser session of an editor (password only)."""
    browser = requests.Session()
    form = browser.get(f"{site.base}/desk/login")
    data = {"csrf_token": csrf(form.text), "name": person.name, "password": person.password}
    answer = browser.post(f"{site.base}/desk/login", data=data)
    assert answer.status_code == 200 and answer.url.endswith("/desk/"), answer.text
    return browser


class FormReader(HTMLParser):
    """The values a browser submits with the page's form that has `data-check` (the editor)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self.action = ""
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form" and "data-check" in values:
            self.inside, self.action = True, values["action"]
        if not self.inside:
            return
        if tag == "input" and values.get("name"):
            if values.get("type") == "checkbox" and "checked" not in values:
                return
            self.values.append((values["name"], values.get("value", "")))
        elif tag == "select":
            self._select = values["name"]
        elif tag == "option" and self._select is not None and "selected" in values:
            self.values.append((self._select, values.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = values["name"], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # As a browser reads it: the line end right after the tag is not part of the text.
            text = "".join(self._text).removeprefix("\n")
            self.values.append((self._textarea, text))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def read_form(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    reader.close()
    assert reader.action, html
    return reader


def _set(values: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(key, value if key == name else old) for key, old in values]


def test_every_sample_file_saved_unchanged_through_the_form_stays_byte_identical(
    desk_site: DeskSite,
) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    files, _ = content_files(desk_site.config.content_dir)
    originals = [(path, kind) for path, kind in files if not TRANSLATION_NAME.match(path.name)]
    assert len(originals) > 30
    commits = _git(desk_site.root, "rev-list", "--count", "HEAD")
    for path, kind in originals:
        before = path.read_bytes()
        page = browser.get(f"{desk_site.base}/desk/edit/{kind.name}/{path.stem}")
        assert page.status_code == 200, path
        form = read_form(page.text)
        assert any(name.startswith("field-") for name, _ in form.values), path
        saved = browser.post(desk_site.base + form.action, data=form.values)
        assert saved.status_code == 200 and "Gespeichert." in saved.text, (path, saved.text)
        assert path.read_bytes() == before, path
    # Nothing changed: nothing was committed.
    assert _git(desk_site.root, "rev-list", "--count", "HEAD") == commits


def test_changed_fields_are_written_in_place_and_committed_by_the_account(
    desk_site: DeskSite,
) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    path = f"/desk/edit/issue/{ISSUE}"
    page = browser.get(desk_site.base + path)
    # Choices come from what exists: regions, topics and the items an issue may show.
    assert f'name="field-events" value="{EVENT}"' in page.text
    assert 'name="field-award" ' in page.text and 'value="sonderpreis-2020"' in page.text
    assert 'type="date" id="field-date"' in page.text
    assert 'type="datetime-local" step="1" id="field-send_at"' in page.text
    # Nested values and what `comms digest run` writes are not offered as text fields.
    assert 'name="field-digest_items"' not in page.text
    event = browser.get(f"{desk_site.base}/desk/edit/event/{EVENT}")
    assert 'name="field-location"' not in event.text and 'name="field-image"' not in event.text
    assert "nur dort: location" in event.text
    form = read_form(page.text)
    values = _set(form.values, "field-subject", "Neuer Betreff: mit Doppelpunkt")
    values = _set(values, "field-send_at", "2020-02-03T09:30")
    # None checked: the browser sends only the list's empty marker.
    values = [(k, v) for k, v in values if k != "field-practices"] + [("field-practices", "")]
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    before = file.read_text(encoding="utf-8").splitlines()
    saved = browser.post(desk_site.base + form.action, data=values)
    assert saved.status_code == 200 and "Gespeichert." in saved.text, saved.text
    after = file.read_text(encoding="utf-8").splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=False) if old != new]
    assert ('subject: "Neuer Betreff: mit Doppelpunkt"') in [new for _, new in changed]
    assert "send_at: 2020-02-03 09:30" in after
    assert "practices: []" in after
    # Every other line (comments and key order included) is as it was.
    assert len(after) == len(before) - sum(1 for line in before if line.startswith("  - ")) + sum(
        1 for line in after if line.startswith("  - ")
    )
    log = _git(desk_site.root, "log", "-1", "--format=%an <%ae>", "--", str(file))
    assert log.strip() == "Erika <erika@example.org>"
    assert ("Erika", "save", f"issue/{ISSUE}") in [row[:3] for row in desk_site.audit()]


def test_a_conflict_keeps_what_was_typed_and_never_overwrites(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/edit/issue/{ISSUE}")
    form = read_form(page.text)
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    theirs = file.read_text(encoding="utf-8") + "\nEin Absatz von jemand anderem.\n"
    file.write_text(theirs, encoding="utf-8")
    body = dict(form.values)["body"] + "\nMein Absatz.\n"
    answer = browser.post(desk_site.base + form.action, data=_set(form.values, "body", body))
    assert answer.status_code == 409
    assert "Mein Absatz." in answer.text and "nichts gespeichert" in answer.text
    assert file.read_text(encoding="utf-8") == theirs


def test_the_problems_endpoint_reads_only_and_names_file_lines(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/edit/issue/{ISSUE}/raw")
    form = read_form(page.text)
    values = dict(form.values)
    text = values["text"]
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("status:"))
    lines[number - 1] = "status: bereitt"
    lines.append("![](/fehlt.png)")
    mistyped = "\n".join(lines) + "\n"
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    before, audit = file.read_bytes(), desk_site.audit()
    head = _git(desk_site.root, "rev-parse", "HEAD")
    answer = browser.post(
        f"{desk_site.base}/desk/check/issue/{ISSUE}", data={**values, "text": mistyped}
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    problems = answer.json()["problems"]
    image = len(lines)
    # comms check's problems at the file's lines, in the desk's words, in line order.
    assert [(p["list"], p["line"], p["text"]) for p in problems] == [
        (
            "problems-text",
            number,
            f"Fehler: Zeile {number}: erwartet: einer von 'draft' oder 'ready' (deutsch: "
            "entwurf, bereit), gefunden: 'bereitt'",
        ),
        ("problems-text", image, f"Fehler: Zeile {image}: Bild ohne Alternativtext: '/fehlt.png'"),
        (
            "problems-text",
            image,
            f"Fehler: Zeile {image}: Bilddatei nicht gefunden: static/fehlt.png (aus '/fehlt.png')",
        ),
    ]
    assert answer.json()["summary"] == "Fehler: 3, Warnungen: 0"
    # Nothing was written: the file, the repository and the audit log are as they were.
    assert file.read_bytes() == before
    assert _git(desk_site.root, "rev-parse", "HEAD") == head
    assert _git(desk_site.root, "status", "--porcelain", "--", "content") == ""
    assert desk_site.audit() == audit
    # Without the form token the endpoint does nothing either.
    refused = browser.post(f"{desk_site.base}/desk/check/issue/{ISSUE}", data={"text": mistyped})
    assert refused.status_code == 400


def test_in_the_form_problems_stand_at_their_field_and_body_line(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/edit/issue/{ISSUE}")
    form = read_form(page.text)
    values = _set(form.values, "field-subject", "")
    body = dict(values)["body"]
    values = _set(values, "body", "Erste Zeile\n[[Platzhalter]]\n" + body)
    answer = browser.post(f"{desk_site.base}/desk/check/issue/{ISSUE}", data=values)
    problems = answer.json()["problems"]
    assert {"problems-subject", "problems-text"} <= {p["list"] for p in problems}, problems
    text_problems = [p["text"] for p in problems if p["list"] == "problems-text"]
    assert any("Zeile 2: " in t and "[[Platzhalter]]" in t for t in text_problems), text_problems


def test_a_save_that_adds_an_error_is_refused_and_keeps_the_text(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/edit/issue/{ISSUE}")
    form = read_form(page.text)
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    before = file.read_bytes()
    body = dict(form.values)["body"] + "\n![](/gibt-es-nicht.png)\n"
    answer = browser.post(desk_site.base + form.action, data=_set(form.values, "body", body))
    assert answer.status_code == 422
    refusal = "Nicht gespeichert: Der Text hat Fehler, die die Datei vorher nicht hatte."
    assert f'<p class="error" role="alert">{refusal}</p>' in answer.text
    assert "Bilddatei nicht gefunden: static/gibt-es-nicht.png" in answer.text
    assert read_form(answer.text).values.count(("body", body)) == 1
    assert file.read_bytes() == before
    # A warning does not stop a save: a subject longer than mail clients show.
    long = "Ein sehr langer Betreff, der in den meisten Postfächern abgeschnitten wird, leider"
    page = browser.get(f"{desk_site.base}/desk/edit/issue/{ISSUE}")
    form = read_form(page.text)
    values = _set(form.values, "field-subject", long)
    saved = browser.post(desk_site.base + form.action, data=values)
    assert saved.status_code == 200 and "Gespeichert." in saved.text
    assert "Warnung: " in saved.text


def test_new_items_come_from_the_archetypes_and_open_in_the_editor(desk_site: DeskSite) -> None:
    erika = desk_site.add("Erika", "editor", "erika@example.org")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/new/event")
    assert page.status_code == 200
    data = {"csrf_token": csrf(page.text), "title": "Sommerfest der Vielfalt", "date": "2020-08-15"}
    suggested = browser.post(f"{desk_site.base}/desk/new/event", data={**data, "suggest": "1"})
    assert 'value="2020-08-15-sommerfest-der-vielfalt"' in suggested.text
    assert suggested.status_code == 200 and 'role="alert"' not in suggested.text
    made = browser.post(f"{desk_site.base}/desk/new/event", data=data)
    assert made.status_code == 200
    assert made.url.endswith("/desk/edit/event/2020-08-15-sommerfest-der-vielfalt?done=create")
    file = desk_site.root / "content" / "events" / "2020-08-15-sommerfest-der-vielfalt.md"
    text = file.read_text(encoding="utf-8")
    assert text.startswith('---\ntitle: "Sommerfest der Vielfalt"\n')
    assert "start: 2020-08-15 10:00" in text
    # The archetype's placeholders are problems, shown in the editor at once.
    assert "[[Veranstaltungsort]]" in made.text and "Fehler: " in made.text
    log = _git(desk_site.root, "log", "-1", "--format=%an <%ae>", "--", str(file))
    assert log.strip() == "Erika <erika@example.org>"
    # The same name again is refused; the file stays as it is.
    again = browser.post(f"{desk_site.base}/desk/new/event", data=data)
    assert again.status_code == 409 and "existiert bereits" in again.text
    suggested = browser.post(f"{desk_site.base}/desk/new/event", data={**data, "suggest": "1"})
    assert suggested.status_code == 409 and "existiert bereits" in suggested.text
    taken = browser.post(
        f"{desk_site.base}/desk/new/practice",
        data={"csrf_token": csrf(page.text), "title": "Neu", "slug": "stuhlbau-projekt-lamspringe"},
    )
    assert taken.status_code == 409
    # Replacing one placeholder at a time is a save: the file had those errors already.
    form = read_form(made.text)
    fixed = _set(form.values, "field-summary", "Ein Fest für alle im Stadtpark.")
    saved = browser.post(desk_site.base + form.action, data=fixed)
    assert saved.status_code == 200 and "Gespeichert." in saved.text
    assert 'summary: "Ein Fest für alle im Stadtpark."' in file.read_text(encoding="utf-8")


def test_a_long_text_in_arabic_script_is_saved_not_refused_as_too_large(
    desk_site: DeskSite,
) -> None:
    erika = desk_site.add("Erika", "editor")
    browser = log_in(desk_site, erika)
    page = browser.get(f"{desk_site.base}/desk/edit/issue/{ISSUE}/raw")
    form = read_form(page.text)
    values = dict(form.values)
    # About 22,000 characters of two UTF-8 bytes each: over 130 KB once percent-encoded,
    # far above the public pages' 64 KiB form limit, within what a body may hold (in
    # paragraphs, as a block may not exceed 10,000 characters).
    paragraph = "\n\n".join(["مرحبا بكم في النشرة الإخبارية " * 150] * 5)
    text = values["text"] + "\n" + paragraph + "\n"
    checked = browser.post(
        f"{desk_site.base}/desk/check/issue/{ISSUE}", data={**values, "text": text}
    )
    assert checked.status_code == 200, checked.text[:300]
    saved = browser.post(desk_site.base + form.action, data={**values, "text": text})
    assert saved.status_code == 200, re.findall(r"<li[^>]*>(.*?)</li>", saved.text)
    file = desk_site.root / "content" / "issues" / f"{ISSUE}.md"
    assert paragraph in file.read_text(encoding="utf-8")
