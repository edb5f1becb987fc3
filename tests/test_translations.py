"""Translations beside their originals: what `comms check` says about them, and their commands."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import babel
import pytest

from comms.content.models import Issue
from comms.content.site import load_valid_site, read_site
from comms.content.translation_files import (
    digest,
    edition_site,
    legacy_digest,
    read_translations,
    untranslated,
    with_digest,
)
from comms.core.config import load_config
from comms.publish import templating
from comms.publish.edition_build import catalog_problems

from .ledgerkit import run_cli

ISSUE = Path("content/issues/2019-07-newsletter.md")
ENGLISH = Path("content/issues/2019-07-newsletter.en.md")
EVENT = Path("content/events/2019-06-21-regionalkonferenz-lueneburg.md")


def check(root: Path) -> tuple[int, list[str]]:
    code, out, _ = run_cli(root, "check")
    return code, out.splitlines()


def line_of(path: Path, prefix: str) -> int:
    """The 1-based line of the first line in `path` that starts with `prefix`."""
    lines = path.read_text("utf-8").splitlines()
    return next(number for number, text in enumerate(lines, 1) if text.startswith(prefix))


def test_the_sample_translations_are_read_and_current(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml")
    site, problems = read_site(config)
    assert problems == []
    english = site.translations["en"]
    translated = english["issue/2019-07-newsletter"]
    assert isinstance(translated, Issue)
    assert translated.subject.startswith("Women's Workshop")
    # Fixed fields come from the original.
    assert translated.events == site.issues["2019-07-newsletter"].events
    assert "issue/2020-02-newsletter" in site.translations["de-x-ls"]
    en = edition_site(site, "en")
    assert en.events["2019-06-21-regionalkonferenz-lueneburg"].title.startswith("Regional")
    assert en.practices == site.practices  # no practice is translated: the originals
    assert "practice/graffiti-workshop-rhede-ems" in untranslated(en, "en", "de")
    assert untranslated(site, "de", "de") == frozenset()


def test_check_catches_a_stale_translation_at_its_line(site_copy: Path) -> None:
    original = site_copy / ISSUE
    original.write_text(original.read_text("utf-8").replace("Juni!", "Juni 2019!"), "utf-8")
    code, lines = check(site_copy)
    assert code == 1
    line = line_of(site_copy / ENGLISH, "original_digest:")
    stale = [text for text in lines if text.startswith(f"{ENGLISH.as_posix()}:{line}: ")]
    assert len(stale) == 1, lines
    assert "translation older than its original 2019-07-newsletter.md" in stale[0]
    # After the translator updates it, `comms translation stamp` records the new digest.
    code, out, err = run_cli(site_copy, "translation", "stamp", str(site_copy / ENGLISH))
    assert code == 0, err
    assert out == f"{site_copy / ENGLISH}: {digest(original)}\n"
    assert check(site_copy)[0] == 0


def test_no_recorded_digest_is_a_warning(site_copy: Path) -> None:
    path = site_copy / ENGLISH
    text = path.read_text("utf-8")
    path.write_text("".join(x for x in text.splitlines(True) if "original_digest" not in x))
    code, lines = check(site_copy)
    assert code == 0
    assert f"{ENGLISH.as_posix()}:1: warning: no 'original_digest' recorded" in "\n".join(lines)
    assert run_cli(site_copy, "check", "--strict")[0] == 1


def test_missing_original_and_fixed_fields_are_errors(site_copy: Path) -> None:
    lost = site_copy / "content/practices/no-such-practice.en.md"
    lost.write_text("---\ntitle: Lost\n---\nBody\n", "utf-8")
    path = site_copy / EVENT.with_name(EVENT.stem + ".en.md")
    text = path.read_text("utf-8")
    path.write_text(text.replace("summary:", "start: 2019-06-21 11:00\nsummary:", 1), "utf-8")
    code, lines = check(site_copy)
    assert code == 1
    joined = "\n".join(lines)
    lost_name = "content/practices/no-such-practice.en.md"
    assert f"{lost_name}:1: the original practices/no-such-practice.md is missing" in joined
    where = f"{path.relative_to(site_copy).as_posix()}:{line_of(path, 'start:')}"
    assert f"{where}: field 'start': differs from the original" in joined


def test_an_original_saved_while_its_translation_is_read_is_an_error(site_copy: Path) -> None:
    # An editor's save truncates the file before writing it: a build that read the original
    # a moment before finds it empty when it reads the original's keys for the translation.
    config = load_config(site_copy / "comms.toml")
    site, problems = read_site(config)
    assert problems == []
    site.translations.clear()
    (site_copy / ISSUE).write_text("", "utf-8")
    context = {"tz": config.tz, "regions": set(), "topics": set()}
    found = [site_copy / ENGLISH]
    problems = read_translations(config.content_dir, site, ["en"], "de", context, found)
    assert [(p.path, p.line, p.warning) for p in problems] == [(site_copy / ENGLISH, 1, False)]
    assert "the original issues/2019-07-newsletter.md changed while it was read" in str(problems[0])
    assert site.translations == {}


def test_translation_in_a_language_not_enabled_is_ignored_with_a_warning(site_copy: Path) -> None:
    shutil.copy(site_copy / ENGLISH, site_copy / ISSUE.with_name("2019-07-newsletter.fr.md"))
    code, lines = check(site_copy)
    assert code == 0
    assert any("language 'fr' is not enabled in [languages]" in line for line in lines)


def test_translation_new_writes_a_skeleton_with_the_digest(site_copy: Path) -> None:
    args = ("translation", "new", "practice", "graffiti-workshop-rhede-ems", "ar")
    code, out, err = run_cli(site_copy, *args)
    assert code == 0, err
    created = site_copy / "content/practices/graffiti-workshop-rhede-ems.ar.md"
    assert out == "created content/practices/graffiti-workshop-rhede-ems.ar.md\n"
    text = created.read_text("utf-8")
    original = site_copy / "content/practices/graffiti-workshop-rhede-ems.md"
    assert f"original_digest: {digest(original)}\n" in text
    assert "title:" in text and "region:" not in text  # the fixed fields stay the original's
    assert check(site_copy)[0] == 0
    again = run_cli(site_copy, *args)
    assert again[0] == 1 and "already exists" in again[2]


def test_with_digest_replaces_or_inserts() -> None:
    assert with_digest("---\ntitle: x\n---\nBody\n", "abc") == (
        "---\noriginal_digest: abc\ntitle: x\n---\nBody\n"
    )
    assert (
        with_digest("---\noriginal_digest: old\n---\n", "new") == "---\noriginal_digest: new\n---\n"
    )
    with pytest.raises(ValueError):
        with_digest("no front matter", "abc")


def test_a_missing_catalog_string_is_a_check_error(
    tmp_path: Path, site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locales = tmp_path / "locale"
    shutil.copytree(templating.LOCALES, locales)
    po = locales / "ar" / "LC_MESSAGES" / "messages.po"
    text = po.read_text("utf-8")
    po.write_text(text.replace('msgstr "التقويم', 'msgstr "', 1).replace(
        'msgid "Imprint"\nmsgstr "بيانات الناشر"', 'msgid "Imprint"\nmsgstr ""'
    ), "utf-8")  # fmt: skip
    monkeypatch.setattr(templating, "LOCALES", locales)
    config = load_config(site_copy / "comms.toml")
    problems = [p for p in catalog_problems(config) if p.path == po]
    assert [p.message for p in problems] == ["no translation for 'Imprint'"]
    assert problems[0].line == line_of(po, 'msgid "Imprint"')


def test_a_stale_translation_never_stops_the_build(site_copy: Path) -> None:
    original = site_copy / ISSUE
    original.write_text(original.read_text("utf-8").replace("Juni!", "Juni 2019!"), "utf-8")
    config = load_config(site_copy / "comms.toml")
    site, problems = load_valid_site(config)  # no InvalidContent: the site builds
    assert [p.path.name for p in problems] == [ENGLISH.name]
    assert problems[0].warning
    # The English edition shows the changed original until the translation is updated.
    assert "issue/2019-07-newsletter" not in site.translations["en"]
    assert "issue/2019-07-newsletter" in untranslated(edition_site(site, "en"), "en", "de")


def test_an_untouched_copy_is_a_warning_and_keeps_the_marker(site_copy: Path) -> None:
    slug = "2018-06-01-aktionstag-internationaler-kindertag"
    code, _, err = run_cli(site_copy, "translation", "new", "event", slug, "en")
    assert code == 0, err
    copy = Path(f"content/events/{slug}.en.md")
    # The line after the closing fence: where the body starts.
    body = (
        next(
            n
            for n, text in enumerate((site_copy / copy).read_text("utf-8").splitlines(), 1)
            if n > 1 and text == "---"
        )
        + 1
    )
    code, lines = check(site_copy)
    assert code == 0
    assert f"{copy.as_posix()}:{body}: warning: the translation is a verbatim copy of its " in (
        "\n".join(lines)
    )
    assert run_cli(site_copy, "check", "--strict")[0] == 1
    code, _, err = run_cli(site_copy, "build")
    assert code == 0, err
    # Untranslated: no page of its own in the edition; its lists link the original's.
    public = site_copy / "public"
    assert not (public / "en" / "events" / slug).exists()
    listing = (public / "en" / "events" / "index.html").read_text("utf-8")
    assert f'<a href="../../events/{slug}/" hreflang="de" lang="de">' in listing
    # Translated text, the original's body kept: a warning at the body, the item translated.
    path = site_copy / copy
    text = path.read_text("utf-8")
    original = (site_copy / f"content/events/{slug}.md").read_text("utf-8")
    title = next(line for line in original.splitlines() if line.startswith("title:"))
    path.write_text(text.replace(title, 'title: "International Children\'s Day"'), "utf-8")
    code, lines = check(site_copy)
    assert f"{copy.as_posix()}:{body}: warning: the text is a verbatim copy of the original " in (
        "\n".join(lines)
    )
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    assert f"event/{slug}" in site.translations["en"]


def test_scheduling_fields_of_the_original_leave_its_translation_current(
    site_copy: Path,
) -> None:
    original = site_copy / "content/issues/2020-02-newsletter.md"
    text = original.read_text("utf-8")
    text = text.replace("send_at: 2020-02-04 09:00", "send_at: 2020-02-11 10:30")
    original.write_text(text.replace("status: ready", "status: draft"), "utf-8")
    code, lines = check(site_copy)
    assert code == 0, lines
    # The wording is what the digest covers: a changed preheader makes it stale.
    original.write_text(text.replace('preheader: "Anmeldung', 'preheader: "Jetzt Anmeldung'))
    code, lines = check(site_copy)
    assert code == 1
    easy = "content/issues/2020-02-newsletter.de-x-ls.md"
    [stale] = [line for line in lines if line.startswith(f"{easy}:2: ")]
    assert stale.endswith(
        "update it, then record the new digest with `comms translation stamp FILE`"
    )


def test_a_digest_recorded_over_the_whole_file_still_holds(site_copy: Path) -> None:
    """Translations stamped before the digest covered the wording only stay current until
    their original changes (then `comms translation stamp` records the new kind)."""
    original = site_copy / ISSUE
    path = site_copy / ENGLISH
    path.write_text(with_digest(path.read_text("utf-8"), legacy_digest(original)), "utf-8")
    assert check(site_copy)[0] == 0
    original.write_text(original.read_text("utf-8").replace("status: ready", "status: draft"))
    code, lines = check(site_copy)
    assert code == 1
    assert any("translation older than its original 2019-07-newsletter.md" in x for x in lines)
    code, _, err = run_cli(site_copy, "translation", "stamp", str(path))
    assert code == 0, err
    assert check(site_copy)[0] == 0


def test_a_catalog_kept_compiled_follows_its_source_and_a_damaged_one_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locales = tmp_path / "locale"
    shutil.copytree(templating.LOCALES, locales)
    monkeypatch.setattr(templating, "LOCALES", locales)
    po = locales / "en" / "LC_MESSAGES" / "messages.po"

    def shown() -> str:
        templating.translations.cache_clear()  # as a new process would
        return templating.translations("en").gettext("Event dates")

    try:
        assert shown() == "Events" == shown()
        po.write_text(po.read_text("utf-8").replace('msgstr "Events"', 'msgstr "Dates"'), "utf-8")
        assert shown() == "Dates"
        cache = templating._bytecode("catalogs")
        assert cache is not None
        made_from = f"{babel.__version__}\0en\0messages\0".encode() + po.read_bytes()
        kept = (
            Path(cache.directory) / f"__comms_catalog_{hashlib.sha256(made_from).hexdigest()}.bin"
        )
        kept.write_bytes(kept.read_bytes()[:-1] + b"x")  # this catalog's only: others share it
        assert shown() == "Dates"
    finally:
        templating.translations.cache_clear()
