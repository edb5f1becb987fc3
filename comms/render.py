"""Jinja2 → MJML → HTML e-mail (mjml-python), plain text and web archive pages."""

from __future__ import annotations

from dataclasses import dataclass

#: Per-recipient placeholders in a rendered issue; the send step substitutes them in the bytes.
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL)


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
