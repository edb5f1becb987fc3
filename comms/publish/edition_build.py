"""Editions: the site and its issues in every enabled language, and the catalogs they need.

An edition is the site as readers of one language see it: each item in translation where
there is one, else the original. It is rendered with its `Edition` value
(`comms.core.languages`), so templates, catalogs, the `Formatter` and the URLs (`/<lang>/…`)
follow.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from babel.core import UnknownLocaleError
from babel.messages.pofile import read_po

from comms.content import urls
from comms.content.models import Issue, Site
from comms.content.translation_files import edition_site, has_page, untranslated
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.core.languages import Edition, site_editions
from comms.publish.archive import archive_files, published_issues
from comms.publish.digest_sections import Reader
from comms.publish.feed_fragments import sweep
from comms.publish.feeds import claimed_fragments, edition_feeds
from comms.publish.page_cache import prints
from comms.publish.producer import Build, Files
from comms.publish.quality import check_issue
from comms.publish.render import (
    RenderedIssue,
    base_context,
    issue_key,
    public_copy,
    render_issue,
)
from comms.publish.templating import babel_locale, catalog_path


def edition_issue(
    config: Config, site: Site, issue: Issue, edition: Edition, reader: Reader | None = None
) -> RenderedIssue:
    """One issue rendered for the readers of `edition` (untranslated items in the original);
    a digest issue with only the sections `reader` sees."""
    own_site = edition_site(site, edition.language)
    return render_issue(config, own_site, own_site.issues[issue.slug], edition, reader)


def edition_files(build: Build) -> Files:
    """The build producer of the editions: per other language, under `/<lang>/`, its archive
    pages, the public copy of each published issue translated into it, its feeds and its
    calendars (feed history in the build's state, as the site's feeds). Items without a
    translation have no files of their own there (`translation_files.has_page`)."""
    config, site, keys = build.config, build.site, prints(build)
    files = Files()
    for edition in site_editions(config).translated:
        own_site = edition_site(site, edition.language)
        base = {
            **base_context(config, edition),
            "untranslated": untranslated(own_site, edition.language, edition.home),
        }
        files.add(archive_files(config, own_site, base, edition, keys))
        for issue in published_issues(own_site, config.now()):
            if not has_page(issue, edition):
                continue  # its page and mails link the site's copy
            rendered = partial(render_issue, config, own_site, issue, edition)
            key = partial(issue_key, keys, config, own_site, issue, edition)
            files.add(public_copy(config, rendered, key), edition.folder + urls.page_path(issue))
        files.add(edition_feeds(build, edition, own_site), edition.folder)
    # The site's feeds (`feed_files`, before) and every edition's have claimed their files.
    sweep(config, claimed_fragments(build))
    return files


def check_editions(config: Config, site: Site) -> list[ContentError]:
    """The e-mail checks of `comms check` on every translated issue, in its edition."""
    problems = []
    for edition in site_editions(config).translated:
        own_site = edition_site(site, edition.language)
        for uid in sorted(site.translations.get(edition.language, {})):
            kind, _, slug = uid.partition("/")
            if kind == "issue":
                problems.extend(check_issue(config, own_site, own_site.issues[slug], edition))
    return problems


def _catalog_problems(language: str, reference: set[str]) -> list[ContentError]:
    path = catalog_path(language)
    if not path.is_file():
        return [ContentError(path, 1, f"no message catalog for the enabled language '{language}'")]
    try:
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=babel_locale(language))
    except (UnknownLocaleError, ValueError) as exc:
        return [ContentError(path, 1, f"cannot read the catalog of '{language}': {exc}")]
    problems = []
    present = set()
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        present.add(key)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            problems.append(ContentError(path, message.lineno or 1, f"no translation for '{key}'"))
    for key in sorted(reference - present):
        problems.append(ContentError(path, 1, f"message '{key}' is missing from the catalog"))
    return problems


def catalog_problems(config: Config) -> list[ContentError]:
    """Every enabled language needs a catalog that translates every interface string."""
    reference = _message_ids(catalog_path(config.home_language))
    problems = []
    for language in config.languages:
        problems.extend(_catalog_problems(language, reference))
    return problems


def _message_ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
