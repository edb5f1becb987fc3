"""Markdown → safe HTML: Python-Markdown with German quotes, sanitised by an nh3 allowlist."""

from __future__ import annotations

import functools
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

_LOCAL = threading.local()


def _markdown() -> markdown.Markdown:
    # One converter per thread: a Markdown instance keeps state between calls, and the
    # scheduler's jobs and the preview's rebuilds read content in threads of their own.
    converter: markdown.Markdown | None = getattr(_LOCAL, "converter", None)
    if converter is None:
        converter = markdown.Markdown(
            extensions=["tables", "smarty", "sane_lists"],
            extension_configs={"smarty": {"substitutions": GERMAN_QUOTES}},
        )
        _LOCAL.converter = converter
    return converter


def markdown_to_html(text: str) -> str:
    """Markdown → HTML, sanitised with an allowlist (no scripts, handlers or javascript: URLs)."""
    return nh3.clean(
        markdown_unsanitised(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
    )


# Cached: `comms check` converts each body twice (the reader, then the link check), and
# conversion is most of the cost of both. Bounded, so a long-running server does not grow.
@functools.lru_cache(maxsize=8192)
def markdown_unsanitised(text: str) -> str:
    """Markdown → HTML before the sanitiser: for checks that must name what it would drop."""
    converter = _markdown()
    converter.reset()
    return str(converter.convert(text))
