"""Jinja2 → MJML → HTML e-mail (mjml-python), plain text and web archive pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import mjml

from comms.content import urls
from comms.content.models import N_, Award, Event, Issue, Practice, Site
from comms.content.translation_files import untranslated
from comms.content.urls import PLACEHOLDERS, PREFERENCES_URL, UNSUBSCRIBE_URL, Urls
from comms.core.config import Config
from comms.core.errors import RenderError
from comms.core.languages import Edition, home_edition
from comms.publish.archive import archive_files, published_issues
from comms.publish.brand import brand_context
from comms.publish.components import button, email_buttons
from comms.publish.digest_sections import Reader, sections
from comms.publish.images import fit_images, picture
from comms.publish.page_cache import Fingerprints, prints
from comms.publish.plaintext import html_to_text, wrap_lines
from comms.publish.producer import Build, Files, Keyed
from comms.publish.templating import Formatter, render_template, translate


@dataclass(frozen=True)
class RenderedIssue:
    """One issue rendered once for every recipient: the placeholders are still in it."""

    slug: str
    number: int
    subject: str
    preheader: str
    html: str
    text: str
    web_url: str
    #: The language of the edition it was rendered in (the mail's Content-Language).
    language: str


def compile_mjml(source: str, config: Config, name: str) -> str:
    """MJML → HTML without third-party requests: no web fonts, social icons from our host."""
    try:
        return str(
            mjml.mjml2html(
                source,
                disable_comments=True,
                fonts={},
                social_icon_origin=Urls(config).icons(),
            )
        )
    except ValueError as exc:
        raise RenderError(f"{name}: MJML error: {exc}") from None


def _render(edition: Edition, folder: str, name: str, context: dict[str, Any]) -> str:
    return render_template(folder, name, edition.language, **context)


def base_context(config: Config, edition: Edition | None = None) -> dict[str, Any]:
    """What every template may use: settings, formatter, URLs, organisation and placeholders,
    worded and linked for `edition` (the site's own by default)."""
    edition = edition or home_edition(config)
    settings, site_urls = config.settings, Urls(config, edition)
    return {
        "fmt": Formatter(config, edition),
        "urls": site_urls,
        "site": settings.site,
        "org": settings.organisation,
        "edition": edition,
        "lang": edition.language,
        # Right-to-left languages mirror the layout (`dir` on <html> and <mjml>).
        "dir": edition.direction,
        "home_lang": edition.home,
        "enabled_languages": config.languages,
        # Items an edition shows in the site's language (comms.content.translation_files).
        "untranslated": frozenset(),
        "html_to_text": html_to_text,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "subscribe_url": site_urls.subscribe(),
        # Logo, colours, header and partners (`[brand]`, comms.publish.brand).
        **brand_context(config),
        # Every e-mail image at most the column wide (comms.publish.images).
        "email_image": partial(picture, config),
        "fit_images": partial(fit_images, config),
        # Buttons (comms.publish.components): `{.button}` links in bodies, registration links.
        "buttons": partial(email_buttons, settings.brand),
        "button_html": partial(button, brand=settings.brand),
    }


@dataclass(frozen=True)
class IssueContent:
    """What an issue features, resolved against the site."""

    issue: Issue
    events: list[Event]
    practices: list[Practice]
    award: Award | None


def issue_content(config: Config, site: Site, issue: Issue) -> IssueContent:
    """The events, practices and award an issue features."""
    return IssueContent(
        issue=issue,
        events=site.issue_events(issue, config.tz),
        practices=site.issue_practices(issue),
        award=site.issue_award(issue),
    )


def _issue_context(
    config: Config, site: Site, issue: Issue, edition: Edition, reader: Reader | None
) -> dict[str, Any]:
    content = issue_content(config, site, issue)
    # A digest issue shows its events and practices in sections per region instead.
    digest = issue.from_digest is not None
    order = list(config.settings.regions)
    parts = sections(site, issue, config.tz, order, reader) if digest else []
    return {
        **base_context(config, edition),
        "untranslated": untranslated(site, edition.language, edition.home),
        "issue": issue,
        "events": [] if digest else content.events,
        "practices": [] if digest else content.practices,
        "sections": parts,
        "award": content.award,
        "web_url": Urls(config, edition).item(issue),
        "title": issue.subject,
        "preheader": issue.preheader,
    }


def render_issue(
    config: Config,
    site: Site,
    issue: Issue,
    edition: Edition | None = None,
    reader: Reader | None = None,
) -> RenderedIssue:
    """Render one issue: subject, preheader, HTML (via MJML) and the plain-text alternative,
    in `edition` (the site's own by default; `site` is that edition's, see `edition_site`);
    a digest issue with only the sections `reader` sees (all without one)."""
    edition = edition or home_edition(config)
    context = _issue_context(config, site, issue, edition, reader)
    source = _render(edition, "email", "issue.mjml.j2", context)
    html = compile_mjml(source, config, issue.path.name)
    text = wrap_lines(_render(edition, "text", "issue.txt.j2", context)).rstrip("\n") + "\n"
    return RenderedIssue(
        slug=issue.slug,
        number=issue.number,
        subject=issue.subject,
        preheader=issue.preheader,
        html=html,
        text=text,
        web_url=context["web_url"],
        language=edition.language,
    )


def render_confirmation(
    config: Config, confirm_url: str, edition: Edition | None = None
) -> tuple[str, str, str]:
    """The double opt-in mail: (subject, html, text); neutral, no newsletter content; in
    `edition` (the site's own by default)."""
    edition = edition or home_edition(config)
    language = edition.language
    subject = translate(language, "Please confirm your newsletter subscription")
    context = {
        **base_context(config, edition),
        # No image at all: the address may be a stranger's, and loading a picture would tell
        # us that they opened the mail; the colours and the name carry the brand here.
        "logo": None,
        "header_image": None,
        "partners": [],
        "confirm_url": confirm_url,
        "title": subject,
        "preheader": translate(language, "One click and your subscription is active."),
    }
    html = compile_mjml(
        _render(edition, "email", "confirmation.mjml.j2", context), config, "confirmation"
    )
    text = wrap_lines(_render(edition, "text", "confirmation.txt.j2", context)).rstrip("\n") + "\n"
    return subject, html, text


#: The mails that carry one personal link: (subject, what was asked for, button).
LINK_MAILS = {
    "export": (
        N_("Your data from the newsletter"),
        N_(
            "Someone – hopefully you – asked on the newsletter settings page for a copy of "
            "the data stored about this e-mail address."
        ),
        N_("Download my data"),
    ),
    "erase": (
        N_("Deleting your newsletter data"),
        N_(
            "Someone – hopefully you – asked on the newsletter settings page to delete this "
            "e-mail address and everything stored about it."
        ),
        N_("Delete my data"),
    ),
    "preferences": (
        N_("Your new link to the newsletter settings"),
        N_(
            "All earlier links to your newsletter settings no longer work, as was asked for "
            "on the settings page. This is your new link."
        ),
        N_("Change your settings"),
    ),
}


def render_link_mail(
    config: Config, kind: str, url: str, minutes: int | None = None, edition: Edition | None = None
) -> tuple[str, str, str]:
    """A mail with one personal link (`LINK_MAILS`): (subject, html, text), in `edition` (the
    site's own by default)."""
    edition = edition or home_edition(config)
    language = edition.language
    subject, asked, button = (translate(language, text) for text in LINK_MAILS[kind])
    paragraphs = [asked]
    if minutes is not None:  # a link that acts once; nothing has happened yet
        once = translate(language, "The link works once, for %(minutes)s minutes.")
        paragraphs.append(once % {"minutes": minutes})
        paragraphs.append(
            translate(language, "If you did not ask for this, ignore this e-mail: nothing happens.")
        )
    context = {
        **base_context(config, edition),
        "title": subject,
        "preheader": paragraphs[0],
        "paragraphs": paragraphs,
        "button": button,
        "url": url,
    }
    html = compile_mjml(_render(edition, "email", "link.mjml.j2", context), config, "link mail")
    text = wrap_lines(_render(edition, "text", "link.txt.j2", context)).rstrip("\n") + "\n"
    return subject, html, text


def site_files(build: Build) -> Files:
    """The web archive plus each published issue's `email.html` and `email.txt` (a producer)."""
    config, site, keys = build.config, build.site, prints(build)
    files = archive_files(config, site, base_context(config), prints=keys)
    for issue in published_issues(site, config.now()):
        rendered = partial(render_issue, config, site, issue)
        key = partial(issue_key, keys, config, site, issue, home_edition(config))
        files.add(public_copy(config, rendered, key), urls.page_path(issue))
    return files


def issue_key(
    keys: Fingerprints, config: Config, site: Site, issue: Issue, edition: Edition
) -> str | None:
    """The page cache's key of the public copy of `issue` in `edition`: everything its
    rendering reads (None: not cached)."""
    return keys.key_or_none("issue", _issue_context(config, site, issue, edition, None))


def public_copy(
    config: Config,
    rendered: Callable[[], RenderedIssue],
    key: Callable[[], str | None] | None = None,
) -> Files:
    """An issue's `email.html` and `email.txt` as the archive publishes them; the issue is
    rendered (`rendered()`) once, when the first of them is read. With the page cache's `key`
    of the rendering (`issue_key`) each file is keyed."""
    # The public copy belongs to nobody: its personal links lead to the sign-up page, which
    # answers under the base URL, instead of to a placeholder that no server answers.
    public = Urls(config).subscribe()
    once = cache(rendered)

    def body(part: Callable[[RenderedIssue], str]) -> Callable[[], bytes]:
        def make() -> bytes:
            text = part(once())
            for placeholder in PLACEHOLDERS:
                text = text.replace(placeholder, public)
            return text.encode("utf-8")

        return make

    html, text = body(lambda r: r.html), body(lambda r: r.text)
    if key is None:
        return Files({"email.html": html, "email.txt": text})
    once_key = cache(key)

    def part_key(name: str) -> Callable[[], str | None]:
        def named() -> str | None:
            found = once_key()
            return None if found is None else f"{found}.{name}"

        return named

    return Files(
        {"email.html": Keyed(part_key("html"), html), "email.txt": Keyed(part_key("txt"), text)}
    )
