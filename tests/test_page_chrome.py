"""Item and list pages made from a layout rendered once are the pages a plain render makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import DictLoader, Environment, StrictUndefined, Template

from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish import archive
from comms.publish.build import collect
from comms.publish.page_chrome import Chrome, hole
from comms.publish.producer import Build
from comms.publish.state import ScratchState


def _pages(root: Path) -> dict[str, bytes]:
    config = load_config(root / "comms.toml")
    site, _ = read_site(config)
    files = collect(Build(config, site, ScratchState()))
    return {path: files[path] for path in files if path.endswith(".html")}


def _whole(cls: type[Chrome], *args: Any) -> None:
    return None


def test_pages_are_the_bytes_of_a_plain_render(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lists paged at 3 entries: first, middle and last pages of a list (their neighbours'
    # links in the head), and lists of one page.
    monkeypatch.setattr(archive, "PAGE_SIZE", 3)
    spliced = _pages(site_copy)
    monkeypatch.setattr(Chrome, "make", classmethod(_whole))  # every page rendered whole
    plain = _pages(site_copy)
    assert spliced.keys() == plain.keys()
    differ = [path for path in plain if spliced[path] != plain[path]]
    assert differ == []
    # The sample has what the layout varies by: translated items (their languages' links)
    # beside items in one language, item pages of every kind, in editions.
    assert any(b'rel="alternate" hreflang=' in page for page in plain.values())
    assert any(b'rel="alternate" hreflang=' not in page for page in plain.values())
    folders = {path.split("/")[0] for path in plain}
    assert folders >= {"events", "practices", "awards", "issues", "en", "ar"}
    heads = [page.split(b"</head>")[0] for page in plain.values()]
    for rels in ((b'rel="prev"', b'rel="next"'), (b'rel="prev"',), (b'rel="next"',)):
        assert any(all(rel in head for rel in rels) for head in heads), rels
    assert "en/events/page/3/index.html" in plain


def test_a_layout_that_reads_more_than_it_is_given_is_not_kept() -> None:
    # The layout reads `lang`, `site` …: without them it cannot be rendered on its own, and
    # its pages are rendered whole.
    assert Chrome.make("web", "event.html.j2", "de", {}) is None


def test_a_layout_s_imported_macros_are_made_once_not_per_page(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `{% from "_macros.html.j2" import … with context %}` made the macro module again for
    # every item page; it is made when a layout is, and its pages reuse it.
    made: list[str] = []
    make_module = Template.make_module

    def counted(self: Template, *args: Any, **kwargs: Any) -> Any:
        made.append(str(self.name))
        return make_module(self, *args, **kwargs)

    layouts: list[str] = []
    make = Chrome.make

    def counted_make(cls: type[Chrome], *args: Any) -> Chrome | None:
        layouts.append(args[1])
        return make(*args)

    monkeypatch.setattr(Template, "make_module", counted)
    monkeypatch.setattr(Chrome, "make", classmethod(counted_make))
    pages = _pages(site_copy)
    items = [path for path in pages if b'<script type="application/ld+json">' in pages[path]]
    assert len(items) >= 40
    assert 0 < made.count("_macros.html.j2") <= len(layouts) < len(pages)


def _env() -> Environment:
    return Environment(
        loader=DictLoader(
            {
                "base": '<title>{{ site }}</title><link href="{{ canonical }}">'
                "{% block main %}{% endblock %}\n",
                "m": '{% macro link(x) %}<a href="{{ root }}{{ x }}">{{ x }}</a>{% endmacro %}'
                "{% macro page() %}[{{ item }}]{% endmacro %}"
                "{% macro here() %}({{ canonical }}){% endmacro %}",
                "own": '{% extends "base" %}{% from "m" import link with context %}'
                "{% block main %}{{ link(item) }}{% endblock %}",
                "reads_page": '{% extends "base" %}{% from "m" import page with context %}'
                "{% block main %}{{ page() }}{% endblock %}",
                "reads_hole": '{% extends "base" %}{% from "m" import here with context %}'
                "{% block main %}{{ here() }}{% endblock %}",
                "sets": '{% extends "base" %}{% set shown = item %}'
                "{% block main %}{{ shown }}{% endblock %}",
            }
        ),
        autoescape=True,
        undefined=StrictUndefined,
    )


@pytest.mark.parametrize("name", ["own", "reads_page", "reads_hole", "sets"])
def test_a_page_whose_macros_read_its_own_values_is_the_plain_render(name: str) -> None:
    # Macros made with the shared values only: one that reads a page's value (or a hole)
    # and a top-level `set` of a page's value still give every page its plain render.
    template = _env().get_template(name)
    shared = {"site": "S & T", "root": "../", "canonical": hole("canonical")}
    chrome = Chrome.of(template, name, shared)
    assert chrome is not None
    assert (chrome.top is None) == (name == "sets")
    for item in ("a<b", "c"):
        canonical = f"https://x.test/{item}/"
        page = chrome.render(
            {**shared, "canonical": canonical, "item": item}, {"canonical": canonical}
        )
        assert page == template.render(site="S & T", root="../", canonical=canonical, item=item)
