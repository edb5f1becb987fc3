"""Markdown → safe HTML: Python-Markdown with German quotes, sanitised by an nh3 allowlist."""

from __future__ import annotations

import functools
import re
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
#: The one class an editor may give: `[Label](URL){.button}` makes a link a button.
CLASSES = {"a": {"class": {"button"}}}
URL_SCHEMES = {"http", "https", "mailto"}
# Smarty's defaults are English quotes; German uses „…“ and ‚…‘.
GERMAN_QUOTES = {
    "left-double-quote": "&bdquo;",
    "right-double-quote": "&ldquo;",
    "left-single-quote": "&sbquo;",
    "right-single-quote": "&lsquo;",
}

#: Longest body (characters) of one content file; longer is an error (docs/content.md).
MAX_BODY = 100_000
#: Longest block (characters between blank lines). Python-Markdown's block and inline passes
#: copy the rest of a block per match, so their time grows with the square of a block's size.
MAX_BLOCK = 10_000
#: Most lines in a body: time grows faster than the number of elements (headings, paragraphs).
MAX_LINES = 2_000
#: Most '[' or '(' open at once in a block: each unclosed one is scanned to the block's end.
MAX_OPEN = 32
#: Most characters that can start inline markup in one block: each match copies the rest of
#: the block, so a block of nothing but quotes, dashes or backticks takes quadratic time.
MAX_MARKS = 1_000
#: Most such characters in a whole body: each one costs tens of microseconds even when cheap.
MAX_BODY_MARKS = 8_000
MARKS = "`\"'-*_&<>\\[]()!~="
#: Most HTML tags in a body: the raw-HTML pass rescans the rest of the body per open tag.
MAX_TAGS = 300
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
_BLANK = re.compile(r"\n[ \t]*\n")
# A link followed by `{.button}` (attr_list's syntax, for this one class only).
_BUTTON = re.compile(r"<a ([^>]*)>((?:(?!</a>).)*)</a>\{\.button\}", re.S)
_TAG = re.compile(r"<[A-Za-z/!?]")
# A line's leading '>' marks (spaces between them allowed): its blockquote depth.
_QUOTE_DEPTH = re.compile(rf"^(?:[ \t]*>){{{MAX_OPEN + 1}}}", re.M)


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


def _open_too_deep(block: str) -> str | None:
    """The bracket of which more than MAX_OPEN are open at once in `block`, if any."""
    if block.count("[") <= MAX_OPEN and block.count("(") <= MAX_OPEN:
        return None  # too few to be that deep: the walk below is most of a body's checks
    depth = {"[": 0, "(": 0}
    for char in block:
        if char in depth:
            depth[char] += 1
            if depth[char] > MAX_OPEN:
                return char
        elif char == "]" and depth["["]:
            depth["["] -= 1
        elif char == ")" and depth["("]:
            depth["("] -= 1
    return None


def markdown_problems(text: str) -> list[tuple[int, str]]:
    """What makes `text` too costly to render, as (line within `text`, message); linear time.

    Rendering time is bounded by these limits (measured by bench/markdown_limits.py): at most
    MAX_BODY characters, MAX_LINES lines and MAX_TAGS tags, blocks of at most MAX_BLOCK
    characters with at most MAX_MARKS markup characters (MAX_BODY_MARKS in all), at most MAX_OPEN
    brackets open at once and blockquotes at most MAX_OPEN deep.
    """
    if len(text) > MAX_BODY:
        return [(1, f"the body has {len(text):,} characters; at most {MAX_BODY:,} are allowed")]
    problems: list[tuple[int, str]] = []
    tags = _TAG.findall(text)
    if len(tags) > MAX_TAGS:
        return [(1, f"the body has {len(tags):,} HTML tags; at most {MAX_TAGS} are allowed")]
    lines = text.count("\n") + 1
    if lines > MAX_LINES:
        return [(1, f"the body has {lines:,} lines; at most {MAX_LINES:,} are allowed")]
    marks = sum(text.count(mark) for mark in MARKS)
    if marks > MAX_BODY_MARKS:
        return [
            (1, f"the body has {marks:,} markup characters ({MARKS}); at most "
             f"{MAX_BODY_MARKS:,} are allowed")
        ]  # fmt: skip
    deep = _QUOTE_DEPTH.search(text)
    if deep is not None:
        at = text.count("\n", 0, deep.start()) + 1
        return [(at, f"blockquotes ('>') nested more than {MAX_OPEN} deep")]
    if (
        len(text) <= MAX_BLOCK
        and marks <= MAX_MARKS
        and text.count("[") <= MAX_OPEN
        and text.count("(") <= MAX_OPEN
    ):
        return []  # no block has more of anything than the whole: no block's limit is reached
    start, line = 0, 1
    for blank in [*_BLANK.finditer(text), None]:
        end = len(text) if blank is None else blank.start()
        block = text[start:end]
        if len(block) > MAX_BLOCK:
            problems.append(
                (line, f"a block of {len(block):,} characters without a blank line; "
                 f"at most {MAX_BLOCK:,} are allowed: split it with blank lines")
            )  # fmt: skip
        elif (marks := sum(block.count(mark) for mark in MARKS)) > MAX_MARKS:
            problems.append(
                (line, f"a block with {marks:,} markup characters ({MARKS}); at most "
                 f"{MAX_MARKS:,} are allowed: split it with blank lines")
            )  # fmt: skip
        elif (bracket := _open_too_deep(block)) is not None:
            problems.append((line, f"more than {MAX_OPEN} '{bracket}' open at once"))
        if blank is not None:
            line += text.count("\n", start, blank.end())
            start = blank.end()
    return problems


# Cached beside the conversion: bodies written from one template are cleaned once, and
# sanitising costs about a third of a cached conversion's reading of a body.
@functools.lru_cache(maxsize=8192)
def markdown_to_html(text: str, language: str = "de") -> str:
    """Markdown → HTML, sanitised with an allowlist (no scripts, handlers or javascript: URLs);
    quotes as the text's language writes them.

    ValueError for a body `markdown_problems` refuses: rendering it could take minutes.
    """
    return _cleaner().clean(markdown_unsanitised(text, language))


@functools.cache
def _cleaner() -> nh3.Cleaner:
    """The allowlist as nh3 keeps it: `nh3.clean` builds it again on every call, which cost
    three times the cleaning itself."""
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values=CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
    )


# Cached: `comms check` converts each body twice (the reader, then the link check), and
# conversion is most of the cost of both. Bounded, so a long-running server does not grow.
@functools.lru_cache(maxsize=8192)
def markdown_unsanitised(text: str, language: str = "de") -> str:
    """Markdown → HTML before the sanitiser: for checks that must name what it would drop.

    ValueError for a body `markdown_problems` refuses (the reader reports it at its line).
    """
    problems = markdown_problems(text)
    if problems:
        raise ValueError(f"line {problems[0][0]}: {problems[0][1]}")
    converter = _markdown(language)
    converter.reset()
    return _BUTTON.sub(r'<a class="button" \1>\2</a>', str(converter.convert(text)))
