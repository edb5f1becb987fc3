"""The configured content as one site: read it, demand it valid, or find one issue in it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from comms.content.content_cache import CACHE_DIR, ContentCache
from comms.content.models import Issue, Site
from comms.content.reader import markdown_files, read_content
from comms.content.translation_files import is_translation, read_translations
from comms.core.collector import batch
from comms.core.config import Config
from comms.core.errors import CommsError, ContentError, ContentErrors


class InvalidContent(ContentErrors):
    """Some content file has an error; carries every problem (warnings too) and the valid rest."""

    def __init__(self, site: Site, problems: list[ContentError]) -> None:
        super().__init__([problem for problem in problems if not problem.warning])
        #: Errors and warnings, to print as `comms check` does.
        self.problems = problems
        #: The items that were valid (the demo still summarises them).
        self.site = site

    def format(self, root: Path | None = None) -> str:
        """The errors (not the warnings) as `PATH:LINE: message` lines."""
        return "\n".join(error.format(root) for error in self.errors)


class IssueErrors(ContentErrors):
    """The issue asked for is not in the site because its own file has errors."""

    def __init__(self, slug: str, problems: list[ContentError]) -> None:
        super().__init__(problems)
        self.slug = slug

    def __str__(self) -> str:
        return f"issue '{self.slug}' has errors; fix them first"


@batch()
def read_site(config: Config) -> tuple[Site, list[ContentError]]:
    """Read the configured content folder: the valid items and every problem; never raises."""
    settings = config.settings
    cache = ContentCache(config.root / CACHE_DIR)
    found = markdown_files(config.content_dir)  # one listing for originals and translations
    site, problems = read_content(
        config.content_dir,
        config.tz,
        settings.regions,
        settings.topics,
        cache,
        found,
        settings.render.workers,
    )
    context = {"tz": config.tz, "regions": set(settings.regions), "topics": set(settings.topics)}
    problems += read_translations(
        config.content_dir, site, config.languages, config.home_language, context, found
    )
    return site, problems


def load_valid_site(config: Config) -> tuple[Site, list[ContentError]]:
    """The configured content and its warnings; InvalidContent when any file has an error.

    Every stage that needs the whole site valid (build, refresh, preview, serve, demo and the
    scheduler's refresh) loads it here, so they agree on what "valid" means.
    """
    site, problems = read_site(config)
    if any(not problem.warning and not is_translation(problem.path) for problem in problems):
        raise InvalidContent(site, problems)
    # A translation with errors (stale, missing original …) is left out and its edition shows
    # the original instead: `comms check` fails on it, but it never stops the site's build
    # or a scheduled send of the original.
    return site, [replace(p, warning=True) if is_translation(p.path) else p for p in problems]


def find_issue(config: Config, site: Site, problems: list[ContentError], slug: str) -> Issue:
    """The issue `slug` of a site read with its problems; IssueErrors or CommsError if absent."""
    issue = site.issues.get(slug)
    if issue is not None:
        return issue
    own = [problem for problem in problems if problem.path.stem == slug]
    if own:
        raise IssueErrors(slug, own)
    known = ", ".join(sorted(site.issues)) or "none"
    raise CommsError(f"no issue '{slug}' in {config.content_dir} (known: {known})")
