"""Sanitised HTML → readable plain text (URLs written out), and wrapping to 78 columns."""

from __future__ import annotations

import re
import textwrap
from html.parser import HTMLParser

#: RFC 5322 recommends 78 characters per line (docs/requirements.md H8).
WIDTH = 78
_BULLET_RE = re.compile(r"^(\s*)([-*•]|\d+\.)\s")
_BLOCKS = {"p", "div", "blockquote", "pre", "table", "ul", "ol", "dl", "hr"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _TextParser(HTMLParser):
    """Collects paragraphs as (prefix, text) pairs; inline links become `text <url>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str, bool]] = []  # (prefix, text, tight)
        self.tight = False
        self.buffer: list[str] = []
        self.prefix = ""
        self.lists: list[list[int]] = []  # one counter per open list; -1 marks a bullet list
        self.href: list[str | None] = []
        # Per open link: whether it is a button (`{.button}`), written "Label: URL".
        self.buttons: list[bool] = []
        self.link_start = 0
        self.cells: list[str] | None = None
        self.heading: str | None = None

    def flush(self) -> None:
        text = " ".join("".join(self.buffer).split())
        self.buffer = []
        if not text:
            return
        if self.cells is not None:
            self.cells.append(text)
            return
        if self.heading is not None:
            rule = "=" if self.heading in ("h1", "h2") else "-"
            self.blocks.append(("", text, False))
            self.blocks.append(("", rule * min(len(text), WIDTH), True))
            return
        self.blocks.append((self.prefix, text, self.tight))
        self.prefix = " " * len(self.prefix)
        self.tight = bool(self.lists)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS or tag in _HEADINGS or tag in ("li", "tr", "dt", "dd"):
            self.flush()
        if tag in _HEADINGS:
            self.heading = tag
        elif tag in ("ul", "ol"):
            self.lists.append([0 if tag == "ol" else -1])
            self.tight = len(self.lists) > 1
        elif tag == "li" and self.lists:
            counter = self.lists[-1]
            indent = "  " * (len(self.lists) - 1)
            if counter[0] >= 0:
                counter[0] += 1
                self.prefix = f"{indent}{counter[0]}. "
            else:
                self.prefix = f"{indent}- "
        elif tag == "tr":
            self.cells = []
        elif tag == "table":
            self.tight = False
        elif tag == "br":
            self.flush()
        elif tag == "hr":
            self.blocks.append(("", "-" * 20, False))
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.buttons.append(dict(attrs).get("class") == "button")
            self.link_start = len("".join(self.buffer))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.buffer.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.href:
            href = self.href.pop()
            button = self.buttons.pop() if self.buttons else False
            label = "".join(self.buffer)[self.link_start :].strip()
            if href and button:
                self.buffer.append(f": {href.removeprefix('mailto:')}")
            elif href:
                target = href.removeprefix("mailto:")
                if target != label:
                    self.buffer.append(f" <{target}>")
        elif tag in ("td", "th"):
            self.flush()
        elif tag == "tr" and self.cells is not None:
            cells, self.cells = self.cells, None
            if cells:
                self.blocks.append(("", " \u2013 ".join(cells), self.tight))
                self.tight = True
        elif tag in _HEADINGS:
            self.flush()
            self.heading = None
        elif tag in ("ul", "ol"):
            self.flush()
            if self.lists:
                self.lists.pop()
            self.prefix = ""
            self.tight = False
        elif tag in _BLOCKS or tag in ("li", "dt", "dd"):
            self.flush()
            self.prefix = "" if not self.lists else self.prefix
            self.tight = self.tight and tag != "table"

    def handle_data(self, data: str) -> None:
        self.buffer.append(data)


def html_to_text(html: str) -> str:
    """Plain text for sanitised Markdown HTML: paragraphs, lists, tables, links written out."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    parser.flush()
    out: list[str] = []
    for prefix, text, tight in parser.blocks:
        if out and not tight:
            out.append("")
        out.append(fill(text, prefix))
    return "\n".join(out)


def fill(text: str, prefix: str = "") -> str:
    """Wrap one paragraph at 78 columns with a hanging indent; URLs are never broken."""
    return textwrap.fill(
        text,
        width=WIDTH,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_long_words=False,
        break_on_hyphens=False,
    )


def wrap_lines(text: str) -> str:
    """Wrap every line longer than 78 columns, keeping its indent (hanging for bullets)."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line if line == "-- " else line.rstrip()  # keep the signature separator
        if len(line) <= WIDTH:
            out.append(line)
            continue
        bullet = _BULLET_RE.match(line)
        if bullet:
            out.append(fill(line[len(bullet.group(0)) :], bullet.group(0)))
        else:
            body = line.lstrip()
            out.append(fill(body, line[: len(line) - len(body)]))
    return "\n".join(out)
