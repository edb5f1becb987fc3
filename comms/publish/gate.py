"""The one gate: every error that blocks sending an issue, as `comms check` reports it.

`comms check` runs `check_problems` (`site_problems` and the editions' checks) over
everything; `comms send` and the scheduler ask `issue_problems` for one issue. Both use the same
checks with the same messages: the reader's, the e-mail checks of `quality` and the link and
image checks of `links`.
"""

from __future__ import annotations

from pathlib import Path

from comms.content.models import KINDS, Issue, Site
from comms.content.reader import content_files
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.publish.check_cache import CheckCache
from comms.publish.edition_build import catalog_problems, check_editions
from comms.publish.link_check import LinkChecker
from comms.publish.quality import check_issue
from comms.publish.render import RenderedIssue
from comms.publish.templating import catalog_path


def _in_folder(path: Path, content_dir: Path, kind: str) -> bool:
    try:
        path.relative_to(content_dir / KINDS[kind].folder)
    except ValueError:
        return False
    return True


def _file_errors(
    errors: list[ContentError], content_dir: Path, kind: str, slug: str
) -> list[ContentError]:
    """The errors (not warnings) of the file of item `slug` of `kind`, wherever it lies."""
    return [
        error
        for error in errors
        if not error.warning
        and error.path.stem == slug
        and _in_folder(error.path, content_dir, kind)
    ]


def _shown(site: Site, issue: Issue) -> list[tuple[str, str]]:
    """(kind, slug) of every item the issue names or shows."""
    named = set(issue.events)
    shown = [("event", slug) for slug in issue.events]
    shown += [("event", e.slug) for e in site.issue_events(issue, site.tz) if e.slug not in named]
    shown += [("practice", slug) for slug in issue.practices]
    if issue.award:
        shown.append(("award", issue.award))
    return shown


def shown_paths(site: Site, issue: Issue) -> list[Path]:
    """The files of an issue and of the valid items it shows."""
    paths = [issue.path]
    for kind, slug in _shown(site, issue):
        item = site.by_kind(kind).get(slug)
        if item is not None and item.path not in paths:
            paths.append(item.path)
    return paths


def _path(
    site: Site, errors: list[ContentError], content_dir: Path, kind: str, slug: str
) -> Path | None:
    """The file of an item: from the site if it is valid, else from its errors."""
    item = site.by_kind(kind).get(slug)
    if item is not None:
        path: Path = item.path
        return path
    own = _file_errors(errors, content_dir, kind, slug)
    return own[0].path if own else None


def issue_problems(
    config: Config,
    site: Site,
    errors: list[ContentError],
    slug: str,
    checker: LinkChecker | None = None,
    rendered: RenderedIssue | None = None,
) -> list[ContentError]:
    """Every error that blocks sending issue `slug`: errors of its own file and of every item it
    shows (events, practices, award) — a referenced file with errors gives "events/x.md has
    errors; see above" at the referencing line — plus the e-mail checks of
    comms/publish/quality.py that are errors. Warnings are not included.

    The preview passes its `checker` for `site` (one for every issue) and the issue's
    `rendered` e-mail; without them they are made here."""
    content_dir = config.content_dir
    issue = site.issues.get(slug)
    items = [("issue", slug)] + (_shown(site, issue) if issue is not None else [])
    problems: list[ContentError] = []
    paths: list[Path] = []
    # The shown items first: the issue's "events/x.md has errors; see above" refers to them.
    for kind, item_slug in [*items[1:], items[0]]:
        problems.extend(_file_errors(errors, content_dir, kind, item_slug))
        path = _path(site, errors, content_dir, kind, item_slug)
        if path is not None and path not in paths:
            paths.append(path)
    checker = LinkChecker(config, site) if checker is None else checker
    problems.extend(p for p in checker.problems(paths) if not p.warning)
    problems.extend(checker.config_problems())
    if issue is not None:
        mail = check_issue(config, site, issue, rendered=rendered)
        problems.extend(p for p in mail if not p.warning)
    # The caller's list may already hold some of these (as `comms check` collects them).
    return list(dict.fromkeys(problems))


def site_problems(
    config: Config, site: Site, cache: CheckCache | None = None
) -> list[ContentError]:
    """The e-mail checks of every issue (drafts too) and the link and image checks of every
    content file, warnings included. The links of files read before come from the check cache
    (`cache`, else one saved here)."""
    own = cache is None
    kept = CheckCache(config) if cache is None else cache
    files, _ = content_files(config.content_dir)
    checker = LinkChecker(config, site, kept)
    problems = checker.problems(path for path, _ in files)
    problems.extend(checker.config_problems())
    for slug in sorted(site.issues):
        problems.extend(check_issue(config, site, site.issues[slug]))
    if own:
        kept.save()
    return problems


def _catalog_bytes(languages: list[str]) -> bytes:
    """The bytes of every catalog `languages` need, each with its language (or "-" if none)."""
    parts = []
    for language in languages:
        try:
            data = catalog_path(language).read_bytes()
        except OSError:
            parts.append(f"{language} -\0".encode())
            continue
        parts.append(f"{language} {len(data)}\0".encode() + data)
    return b"".join(parts)


def check_problems(config: Config, site: Site) -> list[ContentError]:
    """What `comms check` adds to the reader's problems: `site_problems`, the e-mail checks
    of every translated issue in its edition, and the message catalogs of the enabled
    languages (kept in the check cache while no catalog changed)."""
    cache = CheckCache(config)
    problems = site_problems(config, site, cache)
    problems.extend(check_editions(config, site))
    languages = list(dict.fromkeys([config.home_language, *config.languages]))
    raw = _catalog_bytes(languages) + " ".join(config.languages).encode()
    home = catalog_path(config.home_language)
    problems.extend(cache.problems(home, raw, "catalogs", lambda: catalog_problems(config)))
    cache.save()
    return problems
