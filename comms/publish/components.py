"""E-mail components editors use without HTML: bullet-proof buttons (from `{.button}` links and
an event's registration URL)."""

from __future__ import annotations

import html
import re

from comms.core.settings import Brand
from comms.publish.images import COLUMN

# A button link alone in its paragraph (markup.py gives it `class="button"`); nh3 may put the
# class before or after the href.
_ALONE = re.compile(
    r'<p>\s*<a (?=[^>]*\bclass="button")[^>]*\bhref="([^"]*)"[^>]*>((?:(?!</a>).)*)</a>\s*</p>',
    re.S,
)
_INLINE = re.compile(r'<a (?=[^>]*\bclass="button")([^>]*)>')
_TAGS = re.compile(r"<[^>]+>")
FONT = "Helvetica, Arial, sans-serif"


def _vml_width(label: str) -> int:
    # Outlook's VML needs a fixed width: about 10 px per character of 16 px bold, plus padding.
    return min(COLUMN, max(120, 10 * len(label) + 48))


def button(label: str, url: str, brand: Brand) -> str:
    """A bullet-proof button: a table cell in the primary colour for every client and a VML
    rounded rectangle for Outlook on Windows (which ignores padding and radius on links); as
    MJML's mj-button, plus the VML. `label` is plain text, `url` an unescaped URL."""
    text, href = html.escape(label), html.escape(url)
    colours = f"background:{brand.primary};color:{brand.button_text}"
    link = (
        f'<a class="button" href="{href}" style="display:inline-block;{colours};'
        f"font-family:{FONT};font-size:16px;font-weight:bold;line-height:20px;"
        f'text-decoration:none;padding:12px 20px;border-radius:4px;mso-hide:all">{text}</a>'
    )
    vml = (
        '<!--[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" '
        f'xmlns:w="urn:schemas-microsoft-com:office:word" href="{href}" '
        f'style="height:44px;v-text-anchor:middle;width:{_vml_width(label)}px;" arcsize="10%" '
        f'stroke="f" fillcolor="{brand.primary}"><w:anchorlock/><center style="color:'
        f'{brand.button_text};font-family:{FONT};font-size:16px;font-weight:bold;">{text}'
        "</center></v:roundrect><![endif]-->"
    )
    table = (
        '<table class="button-table" role="presentation" border="0" cellpadding="0" '
        'cellspacing="0" style="border-collapse:separate;margin:4px 0 16px;mso-hide:all"><tr>'
        f'<td class="button-cell" bgcolor="{brand.primary}" style="border-radius:4px;'
        f'background:{brand.primary}">{link}</td></tr></table>'
    )
    return vml + table


def email_buttons(brand: Brand, body: str) -> str:
    """An e-mail body with every `{.button}` link made a button: bullet-proof where it stands
    alone in its paragraph, else a link styled as one (inline in running text)."""

    def alone(match: re.Match[str]) -> str:
        label = html.unescape(_TAGS.sub("", match.group(2))).strip()
        return button(label, html.unescape(match.group(1)), brand)

    inline = (
        f"background:{brand.primary};color:{brand.button_text};font-weight:bold;"
        "text-decoration:none;padding:4px 10px;border-radius:4px"
    )
    body = _INLINE.sub(lambda m: f'<a {m.group(1)} style="{inline}">', body)
    return _ALONE.sub(alone, body)
