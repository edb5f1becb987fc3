"""E-mail rendering: language and direction, no third-party requests, footer, text part."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import mjml
import pytest
from PIL import Image

from comms.content.models import Site
from comms.content.site import read_site
from comms.content.translation_files import edition_site
from comms.content.urls import PREFERENCES_URL, UNSUBSCRIBE_URL
from comms.core.config import Config, load_config
from comms.core.errors import ConfigError
from comms.core.languages import site_editions
from comms.core.settings import Brand, contrast
from comms.publish.brand import brand_context, brand_files, dark_palette
from comms.publish.gate import site_problems
from comms.publish.plaintext import WIDTH
from comms.publish.producer import Build
from comms.publish.quality import SIZE_WARNING
from comms.publish.render import RenderedIssue, render_confirmation, render_issue
from comms.publish.state import FileState

from .conftest import ROOT

_URL_LINE = re.compile(r"^\s*(\S+: )?(https?://|%%)\S+$")


@pytest.fixture(scope="module")
def sample() -> tuple[Config, Site]:
    config = load_config(ROOT / "comms.toml")
    site, errors = read_site(config)
    assert [e for e in errors if not e.warning] == []
    return config, site


@pytest.fixture(scope="module")
def rendered(sample: tuple[Config, Site]) -> dict[str, RenderedIssue]:
    config, site = sample
    return {slug: render_issue(config, site, issue) for slug, issue in site.issues.items()}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in ("head", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("head", "style", "title")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Links()
    parser.feed(html)
    return parser.tags


def test_mjml_is_mjml_python() -> None:
    # `pip install mjml` (a different project) installs a module of the same name
    # (docs/requirements.md H2).
    assert hasattr(mjml, "mjml2html")
    assert Path(mjml.__file__).parent.name == "mjml"
    assert not hasattr(mjml, "mjml_to_html")


def test_issue_html_is_german_ltr_and_self_hosted(rendered: dict[str, RenderedIssue]) -> None:
    for issue in rendered.values():
        html = issue.html
        assert html.startswith('<!doctype html><html lang="de" dir="ltr"')
        assert 'role="article" lang="de" dir="ltr"' in html
        assert "fonts.googleapis.com" not in html
        assert "@import" not in html and "url(" not in html
        assert len(html.encode("utf-8")) < 90_000
        for tag, attrs in _tags(html):
            assert tag not in ("script", "form", "iframe", "object")
            if tag == "img":
                assert attrs.get("alt") is not None
                assert str(attrs["src"]).startswith("https://newsletter.example.org/")
            assert tag != "link", f"external stylesheet {attrs}"
            if tag == "table":
                assert attrs.get("role") == "presentation"


def test_footer_has_imprint_and_recipient_placeholders(rendered: dict[str, RenderedIssue]) -> None:
    issue = rendered["2020-02-newsletter"]
    hrefs = [str(a.get("href")) for tag, a in _tags(issue.html) if tag == "a"]
    assert UNSUBSCRIBE_URL in hrefs
    assert PREFERENCES_URL in hrefs
    assert "https://newsletter.example.org/issues/2020-02-newsletter/" in hrefs
    assert "https://example.org/impressum" in hrefs
    assert "https://example.org/datenschutz" in hrefs
    for part in (issue.html, issue.text):
        assert UNSUBSCRIBE_URL in part and PREFERENCES_URL in part
        assert "Musterstraße 1" in part and "30159 Hannover" in part
        assert "info@example.org" in part
        assert "https://example.org/impressum" in part
    assert issue.web_url == "https://newsletter.example.org/issues/2020-02-newsletter/"


def test_event_is_shown_the_german_way(rendered: dict[str, RenderedIssue]) -> None:
    issue = rendered["2020-02-newsletter"]
    when = "Donnerstag, 16. April 2020, 09:30\u201316:30\u00a0Uhr"
    ics = (
        "https://newsletter.example.org/events/"
        "2020-04-16-schwerpunktkonferenz-sprachliche-und-berufliche-integration.ics"
    )
    for part in (issue.html, issue.text):
        assert when in part
        assert "Tagungszentrum am Maschpark, Parkstraße 12, 30159 Hannover" in part
        assert "Region: Landesweit" in part
        assert ics in part
        assert "https://example.org/anmeldung/schwerpunktkonferenz-2020" in part
        assert "Preisgeld: 6.000\u00a0€" in part
        assert "Bewerbungsschluss: Freitag, 31. Juli 2020" in part
    assert ">In den Kalender eintragen</a>" in issue.html
    assert "VERSCHOBEN" in issue.text


def test_text_part_is_a_real_alternative(rendered: dict[str, RenderedIssue]) -> None:
    for issue in rendered.values():
        for line in issue.text.splitlines():
            # A URL is never broken; a line holding one long URL is the only exception.
            assert len(line) <= WIDTH or _URL_LINE.match(line), line
        assert "<" not in issue.text.replace("<https://", "").replace("<mailto:", "")
        assert len(issue.text) > 0.9 * len(_visible_text(issue.html))
    text = rendered["2019-07-newsletter"].text
    assert "Liebe Leserinnen und Leser," in text
    assert "Frauenwerkstatt Ankerplatz e. V., Cuxhaven:" in text


def test_confirmation_mail_is_neutral(sample: tuple[Config, Site]) -> None:
    config, _ = sample
    url = "https://newsletter.example.org/confirm/abc?x=1&y=2"
    subject, html, text = render_confirmation(config, url)
    assert subject == "Bitte bestätigen Sie Ihr Newsletter-Abonnement"
    assert 'href="https://newsletter.example.org/confirm/abc?x=1&amp;y=2"' in html
    assert url in text
    # No image, not even the logo: the address may be a stranger's, and a loaded picture
    # would tell us they opened the mail. The brand bar shows the name as text.
    assert [a for tag, a in _tags(html) if tag == "img"] == []
    assert ">Niedersachsen packt an</div>" in html
    assert UNSUBSCRIBE_URL not in html
    assert "https://example.org/datenschutz" in html and "https://example.org/impressum" in text
    assert html.startswith('<!doctype html><html lang="de" dir="ltr"')


@pytest.mark.parametrize(
    ("brand", "key"),
    [
        ('text = "#9a9a9a"', "brand.text #9a9a9a on brand.background #ffffff"),
        ('primary = "#7fb2c0"', "brand.primary #7fb2c0 on brand.background #ffffff"),
        (
            'primary = "#00566b"\nbutton_text = "#1f1f1f"',
            "brand.button_text #1f1f1f on brand.primary",
        ),
        ('background = "#101010"\ntext = "#202020"', "brand.text #202020 on brand.background"),
    ],
)
def test_brand_colours_must_reach_wcag_aa(tmp_path: Path, brand: str, key: str) -> None:
    (tmp_path / "comms.toml").write_text(f"[brand]\n{brand}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "comms.toml")
    [problem] = caught.value.problems
    assert problem.startswith(f"comms.toml: 'brand': {key}"), problem
    assert "WCAG AA needs at least 4.5:1" in problem


def test_a_logo_needs_alt_text(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('[brand]\nlogo = "images/l.svg"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "comms.toml")
    assert caught.value.problems == [
        "comms.toml: 'brand': brand.logo needs brand.logo_alt (the logo's alternative text)"
    ]


def test_logo_and_brand_colours_reach_the_mail(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text(
        '[brand]\nprimary = "#8A1538"\nlogo = "images/logo.png"\nlogo_alt = "Bündnis"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "comms.toml")
    logo = brand_context(config)["logo"]
    assert (logo.src, logo.alt) == ("https://newsletter.example.org/images/logo.png", "Bündnis")
    _, html, _ = render_confirmation(config, "https://newsletter.example.org/confirm/x")
    assert "a { color: #8a1538;" in html


def test_sample_shows_its_logo_above_the_first_heading(sample: tuple[Config, Site]) -> None:
    config, site = sample
    html = render_issue(config, site, site.issues["2020-02-newsletter"]).html
    tags = _tags(html)
    first_heading = next(n for n, (tag, _) in enumerate(tags) if tag in ("h1", "h2"))
    images = [(n, a) for n, (tag, a) in enumerate(tags) if tag == "img"]
    at, logo = images[0]
    assert at < first_heading
    assert logo["alt"] == "Niedersachsen packt an – Bündnis für Integration"
    # Mail clients get PNG copies of the SVG logo, 2× for sharpness and 1× in srcset.
    assert logo["src"] == "https://newsletter.example.org/_sized/images/brand/logo-400w.png"
    assert "logo-200w.png 1x" in (logo["srcset"] or "")
    # The partners row names the founding partners.
    assert "Partner des Bündnisses" in html and "DGB Niedersachsen" in html


def test_brand_logo_copies_are_rendered_pngs(sample: tuple[Config, Site]) -> None:
    config, _ = sample
    files = brand_files(Build(config, Site(), FileState(config.root)))
    assert sorted(files) == [
        "_sized/images/brand/logo-200w.png",
        "_sized/images/brand/logo-400w.png",
    ]
    for path, width in zip(sorted(files), (200, 400), strict=True):
        with Image.open(io.BytesIO(files[path])) as png:
            assert png.format == "PNG" and png.size == (width, width // 5)


def test_content_is_escaped(site_copy: Path) -> None:
    path = site_copy / "content" / "events" / "2020-11-30-fuenfter-jahrestag.md"
    text = path.read_text(encoding="utf-8")
    evil = '<script>alert(1)</script> & <img src=x onerror="alert(2)">'
    path.write_text(text.replace("summary: ", f"summary: '{evil}' #", 1), encoding="utf-8")
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    rendered = render_issue(config, site, site.issues["2020-02-newsletter"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x" in rendered.html
    assert "<script" not in rendered.html and 'onerror="' not in rendered.html
    assert evil in rendered.text  # plain text shows it literally, harmless there


def test_registration_links_render_as_bullet_proof_buttons(sample: tuple[Config, Site]) -> None:
    config, site = sample
    rendered = render_issue(config, site, site.issues["2020-02-newsletter"])
    url = "https://example.org/anmeldung/schwerpunktkonferenz-2020"
    html = rendered.html
    link = next(a for tag, a in _tags(html) if tag == "a" and a.get("href") == url)
    assert link["class"] == "button"
    assert "background:#00566b;color:#ffffff" in (link["style"] or "")
    # Outlook on Windows gets a VML rounded rectangle with the same link and label.
    assert '<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml"' in html
    assert re.search(rf'<v:roundrect [^>]*href="{re.escape(url)}"[^>]*fillcolor="#00566b"', html)
    # The editor's `{.button}` link in the body is a button too; the plain text keeps
    # each button as "Label: URL".
    body = "https://example.org/sonderpreis/bewerbung"
    assert re.search(rf'<a class="button" href="{re.escape(body)}"', html)
    assert f"Jetzt um den Sonderpreis bewerben: {body}" in rendered.text
    assert f"Anmeldung: {url}" in rendered.text


def test_pictures_show_caption_and_credit(site_copy: Path) -> None:
    path = site_copy / "content" / "practices" / "stuhlbau-projekt-lamspringe.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  credit:", "  caption: Am Werktisch\n  credit:", 1), "utf-8")
    config = load_config(site_copy / "comms.toml")
    site, _ = read_site(config)
    issue = site.issues["2019-11-newsletter"]
    assert "stuhlbau-projekt-lamspringe" in issue.practices
    html = render_issue(config, site, issue).html
    assert (
        '<p class="caption">Am Werktisch · Foto: Geschäftsstelle Niedersachsen packt an</p>' in html
    )


def test_special_prize_is_a_highlighted_card(sample: tuple[Config, Site]) -> None:
    config, site = sample
    html = render_issue(config, site, site.issues["2020-02-newsletter"]).html
    # The accent (#e2a400) tints the card and marks its edge.
    assert '<div class="card" style="background:#fcf4e0;' in html
    assert "border-left:6px solid #e2a400" in html
    # The quote of the issue's body has the accent's edge.
    assert "blockquote { margin: 0 0 12px; padding: 4px 0 4px 16px; border-left: 4px solid " in html


def test_mail_declares_dark_mode_and_outlook_com_hooks(sample: tuple[Config, Site]) -> None:
    config, site = sample
    html = render_issue(config, site, site.issues["2020-02-newsletter"]).html
    assert '<meta name="color-scheme" content="light dark"' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "[data-ogsc] a { color: " in html and "[data-ogsb] .themed > table" in html


@pytest.mark.parametrize("primary", ["#00566b", "#000080", "#8a1538", "#1f1f1f"])
def test_dark_links_stay_readable_for_any_brand(primary: str) -> None:
    dark = dark_palette(Brand(primary=primary))
    assert contrast(dark.link, dark.surface) >= 4.5 and contrast(dark.link, dark.card) >= 4.5
    assert contrast(dark.text, dark.card) >= 4.5 and contrast(dark.muted, dark.page) >= 4.5


def test_every_edition_has_the_brand_and_stays_below_the_clip_limit(
    sample: tuple[Config, Site],
) -> None:
    """Logo, partners and buttons in every edition (RTL and Leichte Sprache too), and no mail
    near Gmail's 102 KB clip limit: under the size check's warning threshold."""
    config, site = sample
    for edition in site_editions(config).all:
        shown = edition_site(site, edition.language)
        rendered = render_issue(config, shown, shown.issues["2020-02-newsletter"], edition)
        html = rendered.html
        assert len(html.encode("utf-8")) < SIZE_WARNING, edition.language
        images = [a for tag, a in _tags(html) if tag == "img"]
        assert (
            images[0]["src"] == "https://newsletter.example.org/_sized/images/brand/logo-400w.png"
        )
        assert 'class="button"' in html and "<v:roundrect" in html, edition.language
        assert "DGB Niedersachsen" in html, edition.language


def test_header_image_and_partner_logos(site_copy: Path) -> None:
    static = site_copy / "static" / "images"
    (static / "partner.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40">'
        '<rect width="120" height="40" fill="#333"/></svg>',
        encoding="utf-8",
    )
    config_file = site_copy / "comms.toml"
    text = config_file.read_text(encoding="utf-8").replace('header = "logo"', "")
    config_file.write_text(
        text.replace(
            '[[brand.partners]]\nname = "Land Niedersachsen"',
            'header = "image"\nheader_image = "images/stuhlbau-projekt-lamspringe.jpg"\n'
            'header_image_alt = "Werkstatt"\n\n[[brand.partners]]\nname = "Land Niedersachsen"\n'
            'logo = "images/partner.svg"\nalt = "Wappen des Landes"\nurl = "https://example.org/land"',
            1,
        ),
        encoding="utf-8",
    )
    config = load_config(config_file)
    site, _ = read_site(config)
    html = render_issue(config, site, site.issues["2020-02-newsletter"]).html
    alts = [a["alt"] for tag, a in _tags(html) if tag == "img"]
    assert alts[:2] == ["Niedersachsen packt an – Bündnis für Integration", "Werkstatt"]
    partner = next(a for tag, a in _tags(html) if tag == "img" and a["alt"] == "Wappen des Landes")
    assert partner["src"] == "https://newsletter.example.org/_sized/images/partner-240w.png"
    assert partner["width"] == "120" and partner["height"] == "40"
    files = brand_files(Build(config, site, FileState(config.root)))
    assert "_sized/images/partner-120w.png" in files and "_sized/images/partner-240w.png" in files
    assert site_problems(config, site) == []
    # A partner's logo that is not there is an error at its line in comms.toml.
    (static / "partner.svg").unlink()
    lines = config_file.read_text(encoding="utf-8").splitlines()
    line = lines.index('logo = "images/partner.svg"') + 1
    [problem] = [p.format(site_copy) for p in site_problems(config, site)]
    assert problem.startswith(
        f"comms.toml:{line}: field 'brand.partners.logo': image file not found"
    )


def test_quote_and_card_edges_mirror_right_to_left(sample: tuple[Config, Site]) -> None:
    config, site = sample
    edition = site_editions(config).get("ar")
    shown = edition_site(site, "ar")
    html = render_issue(config, shown, shown.issues["2020-02-newsletter"], edition).html
    assert "blockquote { border-left: 0; border-right: 4px solid #e2a400;" in html
    assert "border-right:6px solid #e2a400" in html and "border-left:6px" not in html
