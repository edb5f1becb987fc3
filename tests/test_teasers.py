"""The Python teasers write the bytes the Jinja macros they replaced wrote, for every item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.render import synthetic_site
from comms.content.models import Site
from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.languages import Edition, site_editions
from comms.publish.templating import Formatter, environment, pieces

from .conftest import copy_sample

#: The macros as they were in `templates/web/_macros.html.j2` (the reference the Python
#: pieces must match byte for byte, through the same environment and catalogs; a backslash at a
#: line's end joins the line with the next, as the template had them on one line).
MACROS = """\
{% macro time(value, text) -%}
<time datetime="{{ fmt.iso(value) }}">{{ text }}</time>
{%- endmacro %}

{% macro event_facts(event, full=False) -%}
<dl class="facts">
<dt>{% trans %}When{% endtrans %}</dt>
<dd>{{ time(event.start, fmt.event_when(event)) }}</dd>
{% if event.location %}
<dt>{% trans %}Where{% endtrans %}</dt>
<dd>{{ event.location.name }}, {{ event.location.address or event.location.city }}</dd>
{% endif %}
{% if event.online %}
<dt>{% trans %}Online{% endtrans %}</dt>
<dd><a href="{{ event.online }}">{{ event.online }}</a></dd>
{% endif %}
<dt>{% trans %}Region{% endtrans %}</dt>
<dd>{{ fmt.region(event.region) }}</dd>
{% if full %}
{% if event.topics %}
<dt>{% trans %}Topics{% endtrans %}</dt>
<dd>{{ fmt.topics(event.topics) }}</dd>
{% endif %}
<dt>{% trans %}Organiser{% endtrans %}</dt>
<dd>{{ event.organiser }}</dd>
{% endif %}
</dl>
{%- endmacro %}

{% macro event_teaser(event, level=3) -%}
<article class="teaser">
<h{{ level }}><a{{ item_href(event) }}>{{ event.title }}</a></h{{ level }}>
{% if event.status != "planned" %}
<p class="status">{{ fmt.status(event.status) }}</p>
{% endif %}
{{ event_facts(event) }}
<p>{{ event.summary }}</p>
<p class="actions">
{% if event.registration and event.status == "planned" %}<a href="{{ event.registration }}">\
{% trans title=event.title %}Registration: {{ title }}{% endtrans %}</a><br>{% endif %}
<a{{ item_href(event, calendar=True) }}>\
{% trans title=event.title %}Add to calendar: {{ title }}{% endtrans %}</a>
</p>
</article>
{%- endmacro %}

{% macro past_event(event) -%}
<li><a{{ item_href(event) }}>{{ event.title }}</a> ({{ fmt.short_day(event.start) }})</li>
{%- endmacro %}

{% macro practice_teaser(practice, level=3) -%}
<article class="teaser">
<h{{ level }}><a{{ item_href(practice) }}>{{ practice.title }}</a></h{{ level }}>
<p class="meta">{{ practice.organisation }} · {{ practice.city }} \
({{ fmt.region(practice.region) }})</p>
<p>{{ practice.summary }}</p>
</article>
{%- endmacro %}

{% macro award_teaser(award, level=3) -%}
<article class="teaser">
<h{{ level }}><a{{ item_href(award) }}>{{ award.title }}</a></h{{ level }}>
<p class="meta">{% trans %}Prize money{% endtrans %}: {{ fmt.money(award.prize_money) }} · \
{% trans %}Deadline for entries{% endtrans %}: \
{{ time(award.call.deadline, fmt.short_day(award.call.deadline)) }}</p>
<p>{{ award.summary }}</p>
</article>
{%- endmacro %}

{% macro issue_teaser(issue, level=3) -%}
<article class="teaser">
<h{{ level }}><a{{ item_href(issue) }}>{{ issue.subject }}</a></h{{ level }}>
<p class="meta">{% trans number=issue.number %}No. {{ number }}{% endtrans %} · \
{{ time(issue.date, fmt.short_day(issue.date)) }}</p>
<p>{{ issue.preheader }}</p>
</article>
{%- endmacro %}
"""


def _differences(site: Site, page: dict[str, Any], language: str, made: list[str]) -> list[str]:
    """Every piece of every item whose Python bytes differ from the macro's."""
    macros = environment("web", language).from_string(MACROS).make_module(page)
    python = pieces(language)
    calls: list[tuple[str, tuple[Any, ...]]] = []
    for event in site.events.values():
        calls += [("event_facts", (event,)), ("event_facts", (event, True))]
        calls += [("event_teaser", (event,)), ("event_teaser", (event, 2))]
        calls += [("past_event", (event,)), ("time", (event.start, "<b>&"))]
    for practice in site.practices.values():
        calls += [("practice_teaser", (practice,)), ("practice_teaser", (practice, 2))]
    for award in site.awards.values():
        calls += [("award_teaser", (award,)), ("award_teaser", (award, 2))]
    for issue in site.issues.values():
        calls += [("issue_teaser", (issue,)), ("issue_teaser", (issue, 2))]
    differ = []
    for name, args in calls:
        text = str(getattr(python, name)(page, *args))
        expected = str(getattr(macros, name)(*args))
        made.append(text)
        if text != expected:
            differ.append(f"{language} {name} {args[0]!r}: {text!r} != {expected!r}")
    return differ


def _check(root: Path) -> None:
    config = load_config(root / "comms.toml", environ={})
    site, _ = read_site(config)
    assert site is not None
    editions: list[Edition | None] = [None, *site_editions(config).all]
    differ: list[str] = []
    made: list[str] = []
    for edition in editions:
        fmt = Formatter(config, edition)
        language = fmt.language
        for roots in ({"root": "../../"}, {"root": "../", "asset_root": "../../"}):
            page = {"fmt": fmt, "edition": edition, **roots}
            differ += _differences(site, page, language, made)
    assert differ == []
    # The sample has what the teasers vary by: statuses, registrations,
    # items without a page in an edition (linked to the original's), markup to escape.
    assert {"planned", "postponed"} <= {event.status for event in site.events.values()}
    for mark in ('hreflang="de" lang="de"', "</a><br>", "&amp;", "&lt;b&gt;"):
        assert any(mark in text for text in made), mark


def test_teasers_are_the_macros_bytes_for_every_item_of_the_sample(site_copy: Path) -> None:
    _check(site_copy)


@pytest.mark.slow
def test_teasers_are_the_macros_bytes_for_a_generated_site(tmp_path: Path) -> None:
    site = copy_sample(tmp_path / "site")
    (tmp_path / "generated").mkdir()
    synthetic_site(tmp_path / "generated", 60, 60, 0)
    for sub in ("events", "practices"):
        for path in sorted((tmp_path / "generated" / "content" / sub).iterdir()):
            (site / "content" / sub / path.name).write_bytes(path.read_bytes())
    _check(site)
