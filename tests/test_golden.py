"""Golden files for everything rendered from the sample content: e-mails, text parts, web pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish.build import collect
from comms.publish.producer import Build
from comms.publish.render import render_confirmation, render_issue
from comms.publish.state import FileState

from .conftest import ROOT, Golden

ISSUES = ["2019-07-newsletter", "2019-11-newsletter", "2020-02-newsletter", "2020-04-newsletter"]
PAGES = [
    "index.html",
    "events/index.html",
    "issues/2019-11-newsletter/index.html",
    "events/2020-04-16-schwerpunktkonferenz-sprachliche-und-berufliche-integration/index.html",
    "events/2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen/index.html",
    "practices/stuhlbau-projekt-lamspringe/index.html",
    "awards/sonderpreis-2019/index.html",
]


@pytest.mark.parametrize("slug", ISSUES)
def test_issue_email_and_text(golden: Golden, slug: str) -> None:
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    rendered = render_issue(config, site, site.issues[slug])
    golden.check(f"email/{slug}.html", rendered.html)
    golden.check(f"email/{slug}.txt", rendered.text)


def test_confirmation(golden: Golden) -> None:
    config = load_config(ROOT / "comms.toml")
    subject, html, text = render_confirmation(
        config, "https://newsletter.example.org/confirm/TOKEN"
    )
    golden.check("email/confirmation.html", html)
    golden.check("email/confirmation.txt", f"Subject: {subject}\n\n{text}")


def test_web_pages(golden: Golden, site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml")  # a build writes var/ beside comms.toml
    site, _ = read_site(config)
    files = collect(Build(config, site, FileState(config.root)))
    for path in PAGES:
        golden.check(f"web/{path}", files[path].decode("utf-8"))
