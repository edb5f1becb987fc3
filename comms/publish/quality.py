"""E-mail checks for `comms check`: size (Gmail clipping), subject, preheader, alt, link texts."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from comms.content.models import Issue, Site
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError
from comms.core.languages import Edition
from comms.publish.render import RenderedIssue, issue_content, render_issue

#: Gmail clips HTML above about 102 KB (docs/requirements.md E17): warn early, fail before it.
SIZE_WARNING = 80_000
SIZE_ERROR = 100_000
SUBJECT_MAX = 70
PREHEADER_MAX = 110
#: Link texts that say nothing out of context (WCAG 2.4.4, docs/requirements.md H4).
VAGUE_LINKS = frozenset(
    {"hier", "mehr", "klicken sie hier", "hier klicken", "link", "weiter", "weiterlesen"}
    | {"here", "more", "click here", "read more"}
)


class _Scan(HTMLParser):
    """Images without alt text, the text of every link, and all text (references resolved)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images_without_alt: list[str] = []
        self.links: list[str] = []
        self._link: list[str] | None = None
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and not (values.get("alt") or "").strip():
            self.images_without_alt.append(values.get("src") or "")
        elif tag == "a":
            self._link = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append(" ".join("".join(self._link).split()))
            self._link = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._link is not None:
            self._link.append(data)


def _line_of(path: Path, needle: str, default: int) -> int:
    """The first line of a file that contains `needle` (case-insensitive), else `default`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return default
    for number, line in enumerate(lines, start=1):
        if needle.lower() in line.lower():
            return number
    return default


def check_issue(
    config: Config,
    site: Site,
    issue: Issue,
    edition: Edition | None = None,
    rendered: RenderedIssue | None = None,
) -> list[ContentError]:
    """Render one issue (in `edition`, the site's own by default; or take its `rendered`
    e-mail, as the preview has it) and report what would hurt it in the inbox."""
    path = issue.path
    if rendered is None:
        try:
            rendered = render_issue(config, site, issue, edition)
        except CommsError as exc:
            return [ContentError(path, 1, f"cannot render the e-mail: {exc}")]
    problems: list[ContentError] = []
    size = len(rendered.html.encode("utf-8"))
    kilobytes = f"{size / 1000:.0f} KB"
    if size >= SIZE_ERROR:
        problems.append(
            ContentError(
                path,
                1,
                f"the e-mail HTML has {kilobytes}; Gmail clips messages above about 102 KB "
                f"and hides the footer: feature fewer items (limit {SIZE_ERROR // 1000} KB)",
            )
        )
    elif size >= SIZE_WARNING:
        problems.append(
            ContentError(
                path,
                1,
                f"the e-mail HTML has {kilobytes}; Gmail clips messages above about 102 KB "
                f"(warning from {SIZE_WARNING // 1000} KB)",
                warning=True,
            )
        )
    if len(issue.subject) > SUBJECT_MAX:
        problems.append(
            ContentError(
                path,
                issue.line("subject"),
                f"{len(issue.subject)} characters; mail clients cut subjects after about "
                f"{SUBJECT_MAX}",
                field="subject",
                warning=True,
            )
        )
    scan = _Scan()
    scan.feed(rendered.html)
    scan.close()
    preheader = " ".join(issue.preheader.split())
    # Text with text: the HTML escapes `&`, `'` and `"`, the parser turns them back.
    if not preheader or preheader not in " ".join(" ".join(scan.texts).split()):
        problems.append(
            ContentError(path, issue.line("preheader"), "missing preheader", field="preheader")
        )
    elif len(preheader) > PREHEADER_MAX:
        problems.append(
            ContentError(
                path,
                issue.line("preheader"),
                f"{len(preheader)} characters; keep the preheader under {PREHEADER_MAX}",
                field="preheader",
                warning=True,
            )
        )
    content = issue_content(config, site, issue)
    sources = [issue, *content.events, *content.practices]
    if content.award is not None:
        sources.append(content.award)
    for src in scan.images_without_alt:
        owner = next((item for item in sources if src and src in item.html), issue)
        problems.append(
            ContentError(owner.path, _line_of(owner.path, src, 1), f"image without alt text: {src}")
        )
    for text in scan.links:
        if text.lower().strip(" .:!»›→") in VAGUE_LINKS:
            owner = next(
                (item for item in sources if f">{text}</a>" in item.html),
                issue,
            )
            problems.append(
                ContentError(
                    owner.path,
                    _line_of(owner.path, f"[{text}]", 1),
                    f"link text '{text}' says nothing on its own; name the target instead",
                    warning=True,
                )
            )
    return problems


def check_issues(config: Config, site: Site) -> list[ContentError]:
    """Run the e-mail checks on every issue (drafts included), each rendered once."""
    problems: list[ContentError] = []
    for slug in sorted(site.issues):
        problems.extend(check_issue(config, site, site.issues[slug]))
    return problems
