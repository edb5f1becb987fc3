"""Links counted per link, not per person: each http(s) link of an issue's HTML part becomes
`/r/<issue>/<link id>`, the id a keyed hash of the issue and the URL (never enumerable), so that
only the links that are in that issue redirect."""

from __future__ import annotations

import html
import re

from comms.content.urls import Urls, click_path
from comms.core.config import Config
from comms.core.keys import Purpose, keyed_hash

#: An href of an http(s) link (placeholders and mailto: links are left alone).
_HREF = re.compile(r'href="(https?://[^"]+)"')
#: Hex digits of a link id: 64 bits, enough that ids cannot be guessed.
ID_LENGTH = 16


def link_id(secret: str, slug: str, url: str) -> str:
    """The id of `url` (unescaped) in the issue `slug`."""
    return keyed_hash(secret, Purpose.CLICK_LINK, f"{slug}\0{url}")[:ID_LENGTH]


def issue_links(secret: str, slug: str, page: str) -> dict[str, str]:
    """Link id → URL of every http(s) link in the issue's HTML `page`."""
    urls = (html.unescape(found) for found in _HREF.findall(page))
    return {link_id(secret, slug, url): url for url in urls}


def counted_links(config: Config, secret: str, slug: str, page: str) -> str:
    """The HTML `page` with each http(s) link sent through its counting redirect."""
    site = Urls(config)

    def redirect(found: re.Match[str]) -> str:
        url = html.unescape(found.group(1))
        counted = site.absolute(click_path(slug, link_id(secret, slug, url)))
        return f'href="{html.escape(counted)}"'

    return _HREF.sub(redirect, page)
