"""The mail uses no feature a major client lacks, but those known and meant (caniemail's data)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from comms.content.models import Site
from comms.content.site import read_site
from comms.content.translation_files import edition_site
from comms.core.config import Config, load_config
from comms.core.languages import site_editions
from comms.publish.render import render_issue

from .conftest import ROOT

DATA = ROOT / "node_modules" / "caniemail" / "data" / "caniemail.json"
#: The clients our readers use (German market included), by caniemail's family and platform.
CLIENTS = {
    "apple-mail": ("macos", "ios"),
    "gmail": ("desktop-webmail", "ios", "android"),
    "outlook": ("windows", "outlook-com", "macos", "ios", "android"),
    "yahoo": ("desktop-webmail",),
    "samsung-email": ("android",),
    "thunderbird": ("macos", "windows"),
    "gmx": ("desktop-webmail",),
    "web-de": ("desktop-webmail",),
    "t-online-de": ("desktop-webmail",),
}
#: Features the mail uses, found by a pattern in its HTML.
USED = {
    "css-at-media": r"@media",
    "css-at-media-prefers-color-scheme": r"@media \(prefers-color-scheme",
    "css-color-scheme": r"color-scheme:",
    "html-meta-color-scheme": r'<meta name="color-scheme"',
    "css-border-radius": r"border-radius",
    "css-selector-attribute": r"\[data-og",
    "css-selector-child": r"> table",
    "css-important": r"!important",
    "html-srcset": r"srcset=",
    "html-style": r"<style",
    "html-lang": r" lang=",
    "html-dir": r" dir=",
    "css-height": r"height:",
    "css-max-width": r"max-width",
    "css-display-none": r"display:\s*none",
    "css-background-color": r"background-color",
    "css-padding": r"padding",
    "css-border": r"border",
    "css-margin": r"margin",
    "css-line-height": r"line-height",
    "html-blockquote": r"<blockquote",
}
#: Knowingly unsupported: where a client lacks the feature, what it shows instead.
KNOWN = {
    "css-at-media": "Outlook on Windows has the 600 px column (MJML's mso tables) instead",
    "css-at-media-prefers-color-scheme": "no dark styles: the light mail, or the client's own"
    " inversion (Outlook.com: the [data-ogsc] hooks)",
    "css-color-scheme": "the client decides on dark mode itself",
    "html-meta-color-scheme": "the client decides on dark mode itself",
    "css-border-radius": "square buttons and cards (Outlook on Windows: the VML roundrect)",
    "css-selector-attribute": "only Outlook.com sets data-ogsc/data-ogsb; others ignore it",
    "css-selector-child": "dark-mode and Outlook.com rules only; light mail unaffected",
    "css-important": "dark-mode overrides only; GMX and WEB.DE show the light mail",
    "html-srcset": "src is the 2x copy, sized by width/height: sharp everywhere",
    "html-style": "every layout style is inline (MJML); GMX and WEB.DE drop <style>",
    "html-lang": "the edition's language is also in Content-Language",
    "html-dir": "RTL editions also align right with inline styles (MJML)",
    "css-height": "height:auto on images; Yahoo keeps the height attribute's proportion",
}
#: Features a layout must not need: no fallback in the clients that lack them.
FORBIDDEN = {
    "css-display-flex": r"display:\s*flex",
    "css-display-grid": r"display:\s*grid",
    "css-variables": r"var\(--",
    "css-position": r"position:\s*(absolute|fixed|relative)",
    "image-svg": r"<img[^>]+src=\"[^\"]+\.svg",
    "css-at-font-face": r"@font-face",
}


@pytest.fixture(scope="module")
def sample() -> tuple[Config, Site]:
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    return config, site


def _data() -> dict[str, Any]:
    if not DATA.is_file():
        pytest.fail(f"{DATA} is missing: run `npm install` (package.json; .ci/run does it)")
    features = json.loads(DATA.read_text(encoding="utf-8"))["data"]
    return {feature["slug"]: feature for feature in features}


def lacking(feature: dict[str, Any]) -> list[str]:
    """The clients of CLIENTS whose latest test of `feature` says "n" (not supported)."""
    out = []
    for family, platforms in CLIENTS.items():
        for platform in platforms:
            versions = feature["stats"].get(family, {}).get(platform)
            if versions and list(versions.values())[-1].startswith("n"):
                out.append(f"{family}/{platform}")
    return out


def _mails(config: Config, site: Site) -> dict[str, str]:
    mails = {}
    for edition in site_editions(config).all:
        shown = edition_site(site, edition.language)
        for slug in ("2019-11-newsletter", "2020-02-newsletter"):
            mails[f"{edition.language}/{slug}"] = render_issue(
                config, shown, shown.issues[slug], edition
            ).html
    return mails


def test_only_knowingly_unsupported_features(sample: tuple[Config, Site]) -> None:
    data = _data()
    html = "\n".join(_mails(*sample).values())
    surprises = {}
    for slug, pattern in USED.items():
        if re.search(pattern, html) and slug not in KNOWN and lacking(data[slug]):
            surprises[slug] = lacking(data[slug])
    assert surprises == {}, "add a fallback, or list the feature in KNOWN with what is shown"
    assert [slug for slug in KNOWN if slug not in USED] == []


def test_no_layout_needs_a_feature_major_clients_lack(sample: tuple[Config, Site]) -> None:
    data = _data()
    assert all(lacking(data[slug]) for slug in FORBIDDEN)  # still lacking, still forbidden
    for name, html in _mails(*sample).items():
        found = [slug for slug, pattern in FORBIDDEN.items() if re.search(pattern, html)]
        assert found == [], name


def test_detection_finds_what_it_forbids() -> None:
    html = '<div style="display: flex"><img src="https://x.org/a.svg" alt="a"></div>'
    found = [slug for slug, pattern in FORBIDDEN.items() if re.search(pattern, html)]
    assert found == ["css-display-flex", "image-svg"]
    assert Path(DATA).name == "caniemail.json"
