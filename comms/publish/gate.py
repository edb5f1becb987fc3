"""What blocks sending one issue: the errors of its file, of every item it shows, of its e-mail."""

from __future__ import annotations

from pathlib import Path

from comms.content.models import KINDS, Item, Site
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.publish.quality import check_issue
from comms.publish.render import issue_content


def _files(config: Config, site: Site, slug: str) -> set[Path]:
    """The content files an issue depends on: its own, those it names and those it shows."""
    folders = {name: kind.folder for name, kind in KINDS.items()}
    files = {config.content_dir / folders["issue"] / f"{slug}.md"}
    issue = site.issues.get(slug)
    if issue is None:
        return files
    files.add(issue.path)
    named = [("event", s) for s in issue.events] + [("practice", s) for s in issue.practices]
    named += [("award", issue.award)] if issue.award else []
    files |= {config.content_dir / folders[kind] / f"{name}.md" for kind, name in named}
    content = issue_content(config, site, issue)
    shown: list[Item] = [*content.events, *content.practices]
    shown += [content.award] if content.award is not None else []
    files |= {item.path for item in shown}
    return files


def issue_problems(
    config: Config, site: Site, errors: list[ContentError], slug: str
) -> list[ContentError]:
    """Every error that blocks sending issue `slug`: errors of its own file and of every item it
    shows (events, practices, award) plus the e-mail checks of comms/publish/quality.py that are
    errors. Warnings are not included."""
    files = {path.resolve() for path in _files(config, site, slug)}
    found = [e for e in errors if not e.warning and e.path.resolve() in files]
    issue = site.issues.get(slug)
    if issue is not None:
        found += [p for p in check_issue(config, site, issue) if not p.warning]
    unique = dict.fromkeys(found)
    return sorted(unique, key=lambda e: (str(e.path), e.line, e.message))
