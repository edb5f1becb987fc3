"""`comms check` on issues: e-mail size, subject length, preheader, vague link texts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from comms.cli import cli
from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.quality import check_issue

from .conftest import ROOT

ISSUE = "content/issues/2020-04-newsletter.md"


def _check(site: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["--config", str(site / "comms.toml"), "check"])
    return result.exit_code, result.stdout.splitlines()


def _edit(site: Path, old: str, new: str) -> None:
    path = site / ISSUE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_long_subject_and_vague_link_are_warnings(site_copy: Path) -> None:
    _edit(
        site_copy,
        'subject: "Schwerpunktkonferenz am 16. April: Sprache und Beruf im Fokus"',
        'subject: "Schwerpunktkonferenz am 16. April: Sprache und Beruf im Fokus – jetzt anmelden"',
    )
    _edit(
        site_copy,
        "sollte sich jetzt anmelden.",
        "sollte sich jetzt anmelden: [hier](https://example.org/anmeldung).",
    )
    code, lines = _check(site_copy)
    assert code == 0
    assert lines == [
        f"{ISSUE}:3: warning: field 'subject': 78 characters; mail clients cut subjects "
        "after about 70",
        f"{ISSUE}:17: warning: link text 'hier' says nothing on its own; name the target instead",
    ]


def test_size_warning_and_error(site_copy: Path) -> None:
    original = (site_copy / ISSUE).read_text(encoding="utf-8")
    paragraph = "Ein Absatz, der das Editorial künstlich verlängert, damit die Mail wächst. " * 10

    def check_with(paragraphs: int) -> tuple[int, list[str]]:
        long_body = "\n\n".join([paragraph] * paragraphs)
        text = original.replace("Liebe Leserinnen und Leser,", long_body, 1)
        (site_copy / ISSUE).write_text(text, encoding="utf-8")
        return _check(site_copy)

    code, lines = check_with(75)
    assert code == 0
    assert len(lines) == 1
    assert lines[0].startswith(f"{ISSUE}:1: warning: the e-mail HTML has ")
    assert lines[0].endswith(" KB; Gmail clips messages above about 102 KB (warning from 80 KB)")
    code, lines = check_with(110)
    assert code == 1
    assert lines[0].startswith(f"{ISSUE}:1: the e-mail HTML has ")
    assert lines[0].endswith(
        " KB; Gmail clips messages above about 102 KB and hides the footer: "
        "feature fewer items (limit 100 KB)"
    )


def test_long_preheader_is_a_warning(site_copy: Path) -> None:
    _edit(
        site_copy,
        'preheader: "Jetzt',
        'preheader: "Noch etwas Text vorweg, damit es lang wird: Jetzt',
    )
    code, lines = _check(site_copy)
    assert code == 0
    assert lines == [
        f"{ISSUE}:4: warning: field 'preheader': 140 characters; keep the preheader under 110"
    ]


def test_preheader_with_ampersand_and_apostrophe_is_found(site_copy: Path) -> None:
    """The HTML escapes `&` and `'`: the check compares the preheader's text, not its markup."""
    _edit(
        site_copy,
        'preheader: "Jetzt zur Konferenz anmelden,',
        "preheader: \"Sprache & Beruf: Anna's Tipps,",
    )
    code, lines = _check(site_copy)
    assert (code, lines) == (0, [])


def test_image_without_alt_in_the_mail() -> None:
    # The reader already rejects such Markdown; this guards HTML that reaches the mail otherwise.
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    issue = site.issues["2020-04-newsletter"]
    site.issues[issue.slug] = issue.model_copy(
        update={"html": issue.html + '<p><img src="/images/x.jpg"></p>'}
    )
    problems = check_issue(config, site, site.issues[issue.slug])
    assert [p.format(ROOT) for p in problems] == [
        f"{ISSUE}:1: image without alt text: https://newsletter.example.org/images/x.jpg"
    ]
