"""Markdown → safe HTML: Python-Markdown with German quotes, sanitised by an nh3 allowlist."""

from __future__ import annotations

import threading

import markdown
import nh3

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "small",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "abbr": {"title"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Smarty's defaults are English quotes; German uses „…“ and ‚…‘.
GERMAN_QUOTES = {
    "left-double-quote": "&bdquo;",
    "right-double-quote": "&ldquo;",
    "left-single-quote": "&sbquo;",
    "right-single-quote": "&lsquo;",
}

# Arabic and Persian quote with guillemets, «…» and ‹…›.
GUILLEMETS = {
    "left-double-quote": "&laquo;",
    "right-double-quote": "&raquo;",
    "left-single-quote": "&lsaquo;",
    "right-single-quote": "&rsaquo;",
}
#: Quotes per language of a text; English is Smarty's default, others German.
QUOTES: dict[str, dict[str, str]] = {"en": {}, "ar": GUILLEMETS, "fa": GUILLEMETS}

_LOCAL = threading.local()


def _markdown(language: str) -> markdown.Markdown:
    # One converter per thread and language: a Markdown instance keeps state between calls,
    # and the scheduler's jobs and the preview's rebuilds read content in threads of their own.
    converters: dict[str, markdown.Markdown] = _LOCAL.__dict__.setdefault("converters", {})
    quotes = QUOTES.get(language, GERMAN_QUOTES)
    key = language if language in QUOTES else "de"
    converter = converters.get(key)
    if converter is None:
        converter = markdown.Markdown(
            extensions=["tables", "smarty", "sane_lists"],
            extension_configs={"smarty": {"substitutions": quotes}},
        )
        converters[key] = converter
    return converter


def markdown_to_html(text: str, language: str = "de") -> str:
    """Markdown → HTML, sanitised with an allowlist (no scripts, handlers or javascript: URLs);
    quotes as the text's language writes them."""
    converter = _markdown(language)
    converter.reset()
    return nh3.clean(
        converter.convert(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
    )
