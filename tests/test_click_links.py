"""Counted links (`mail.count_clicks`): off, a mail's bytes are exactly as before; on, every
http(s) link of the HTML part leads through `/r/<issue>/<link id>`, and the ids map back to
the issue's own links only."""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

from comms.content.urls import PREFERENCES_URL, UNSUBSCRIBE_URL
from comms.mail.click_links import issue_links, link_id
from comms.mail.message import MessageFactory, Recipient

from .issue_sample import SECRET, config_for, rendered_issue

WINTER = datetime(2020, 2, 4, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
HREF = re.compile(r'href="([^"]+)"')
READER = Recipient("u-42", "leserin@example.org")


def parts(data: bytes) -> tuple[EmailMessage, str, str]:
    msg = BytesParser(policy=default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    text, html = (p for p in msg.walk() if not p.is_multipart())
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return msg, text.get_content(), html.get_content()


def test_off_by_default_leaves_the_mail_byte_for_byte(tmp_path: Path) -> None:
    default_off = MessageFactory(config_for(tmp_path), rendered_issue(), SECRET, date=WINTER)
    off = MessageFactory(
        config_for(tmp_path, "[mail]\ncount_clicks = false\n"), rendered_issue(), SECRET, WINTER
    )
    assert default_off.build(READER).data == off.build(READER).data
    _, _, html = parts(off.build(READER).data)
    assert "/r/" not in html


def test_on_every_web_link_goes_through_its_counter(tmp_path: Path) -> None:
    issue = rendered_issue()
    original = [u for u in HREF.findall(issue.html) if u.startswith("http")]
    assert original, "the sample issue has web links"
    off_msg, off_text, _ = parts(MessageFactory(config_for(tmp_path), issue, SECRET, WINTER)
                                 .build(READER).data)  # fmt: skip
    config = config_for(tmp_path, "[mail]\ncount_clicks = true\n")
    msg, text, html = parts(MessageFactory(config, issue, SECRET, WINTER).build(READER).data)
    counted = [u for u in HREF.findall(html) if u.startswith("https://newsletter.example.org/r/")]
    assert len(counted) == len(original)
    links = issue_links(SECRET, issue.slug, issue.html)
    for url, redirect in zip(original, counted, strict=True):
        link = link_id(SECRET, issue.slug, url.replace("&amp;", "&"))
        assert redirect == f"https://newsletter.example.org/r/{issue.slug}/{link}"
        assert links[link] == url.replace("&amp;", "&")
    # The personal links and the plain-text part are not touched.
    assert msg["List-Unsubscribe"] == off_msg["List-Unsubscribe"]
    assert text == off_text
    assert "/unsubscribe/" in html and "/preferences/" in html
    assert UNSUBSCRIBE_URL not in html and PREFERENCES_URL not in html


def test_a_link_id_belongs_to_one_issue_and_cannot_be_made_without_the_key() -> None:
    url = "https://example.org/"
    assert link_id(SECRET, "a", url) != link_id(SECRET, "b", url)
    assert link_id(SECRET, "a", url) != link_id(SECRET + "x", "a", url)
    assert re.fullmatch(r"[0-9a-f]{16}", link_id(SECRET, "a", url))
