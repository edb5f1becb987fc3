"""The one gate: every error that blocks sending an issue, as `comms check` reports it."""

from __future__ import annotations

from pathlib import Path

from comms.content.models import KINDS, Issue, Site
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.publish.quality import check_issue


def _file_errors(
    errors: list[ContentError], content_dir: Path, kind: str, slug: str
) -> list[ContentError]:
    """The errors (not warnings) of the file of item `slug` of `kind`, wherever it lies."""
    folder = content_dir / KINDS[kind].folder
    found = []
    for error in errors:
        if error.warning or error.path.stem != slug:
            continue
        try:
            error.path.relative_to(folder)
        except ValueError:
            continue
        found.append(error)
    return found


def _shown(site: Site, issue: Issue) -> list[tuple[str, str]]:
    """(kind, slug) of every item the issue names or shows."""
    shown = [("event", slug) for slug in issue.events]
    shown += [
        ("event", e.slug) for e in site.issue_events(issue, site.tz) if e.slug not in issue.events
    ]
    shown += [("practice", slug) for slug in issue.practices]
    if issue.award:
        shown.append(("award", issue.award))
    return shown


def issue_problems(
    config: Config, site: Site, errors: list[ContentError], slug: str
) -> list[ContentError]:
    """Every error that blocks sending issue `slug`: errors of its own file and of every item it
    shows (events, practices, award) — a referenced file with errors gives "events/x.md has
    errors; see above" at the referencing line — plus the e-mail checks of
    comms/publish/quality.py that are errors. Warnings are not included."""
    content_dir = config.content_dir
    own = _file_errors(errors, content_dir, "issue", slug)
    issue = site.issues.get(slug)
    if issue is None:
        return own
    # The shown items first: the issue's "events/x.md has errors; see above" refers to them.
    problems: list[ContentError] = []
    for kind, item_slug in _shown(site, issue):
        problems.extend(_file_errors(errors, content_dir, kind, item_slug))
    problems.extend(own)
    problems.extend(p for p in check_issue(config, site, issue) if not p.warning)
    # The caller's list may already hold the quality errors (as `comms check` collects them).
    return list(dict.fromkeys(problems))
