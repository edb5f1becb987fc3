"""The building blocks of every subscriber page: the wording in the page's language (`?lang=`,
else the person's, else the site's), relative links to the site root, one-message notice pages
and the headers they carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, request

from comms.audience.subscriber_csv import subscriber_languages
from comms.content import urls
from comms.core.config import Config
from comms.core.languages import Edition, site_editions
from comms.publish.render import base_context
from comms.publish.templating import render_template, translate

#: No scripts, nothing from other hosts, forms only to us, no framing (clickjacking).
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def page_edition() -> Edition:
    """The page's edition: that of `?lang=`, else of the person's language, where the site
    offers it; else the site's own."""
    config: Config = current_app.config["COMMS_CONFIG"]
    chosen = request.args.get("lang", "") or str(g.get("language", ""))
    return site_editions(config).for_reader(chosen)


def page_language() -> str:
    """The language of the page's edition."""
    return page_edition().language


def _(message: str) -> str:
    """An interface string in the page's language (extracted into the Babel catalogs)."""
    return translate(page_language(), message)


def language_choices(config: Config) -> list[tuple[str, str]]:
    """The languages a person may choose, with their labels."""
    return [
        (code, config.languages[code].label if code in config.languages else code)
        for code in subscriber_languages(config)
    ]


def site_root() -> str:
    """The relative path from the current page to the site root (`./`, `../`)."""
    depth = request.path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


@dataclass(frozen=True)
class Button:
    """A one-button form on a notice page."""

    action: str
    label: str


def page(name: str, status: int = 200, **context: Any) -> Response:
    """Render `templates/web/<name>` with the site context; never cached by proxies."""
    config: Config = current_app.config["COMMS_CONFIG"]
    edition = page_edition()
    html = render_template(
        "web",
        name,
        edition.language,
        **base_context(config, edition),
        root=site_root(),
        **context,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # tokens in our URLs stay here
    response.headers["Content-Security-Policy"] = CSP
    return response


def notice(
    heading: str,
    *paragraphs: str,
    status: int = 200,
    button: Button | None = None,
    links: list[tuple[str, str]] | None = None,
) -> Response:
    """A page with one message, an optional button and links."""
    return page(
        "notice.html.j2",
        status,
        heading=heading,
        paragraphs=paragraphs,
        button=button,
        links=links or [],
    )


def bad_link() -> Response:
    """The page for a forged, damaged or unknown link."""
    return notice(
        _("This link is not valid"),
        _("The link is incomplete or was changed. Please copy it completely from the e-mail."),
        status=404,
        links=[(_("Subscribe to the newsletter"), site_root() + urls.SUBSCRIBE)],
    )
