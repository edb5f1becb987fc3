"""Which edition a subscriber gets ("theirs if the site offers it, else the site's") is decided
once, by `Editions.for_reader`: every place that picks an edition for a person agrees."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.content.site import read_site
from comms.core.languages import Edition, Editions, site_editions
from comms.db.tables import deliveries
from comms.mail.message import Recipient
from comms.sending.issue_editions import issue_editions

from .conftest import ROOT
from .webkit import Web, open_web

ISSUE = "2019-07-newsletter"
HTML_LANG = re.compile(r'<html lang="([^"]+)"')


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path) as kit:
        yield kit


def _person(web: Web, language: str) -> str:
    """An active subscriber whose recorded language is `language`; their preferences token."""
    person = web.activate("kim@example.org")
    web.store.update_preferences(person.uid, (), (), language)
    again = web.store.find("kim@example.org")
    assert again is not None and again.language == language
    return web.subs.preferences_token(again)


def _by_ledger_count(web: Web, token: str) -> str:
    ledger = web.store.ledger
    [(edition, count)] = ledger.recipients_by_edition([], [], site_editions(web.config)).items()
    assert count == 1
    return edition


def _by_ledger_snapshot(web: Web, token: str) -> str:
    now = datetime(2020, 1, 1, tzinfo=UTC)
    campaign, _ = web.store.ledger.start("x", "hash", [], [], now, site_editions(web.config))
    with web.store.ledger.reading() as conn:
        query = sa.select(deliveries.c.edition).where(deliveries.c.campaign_id == campaign.id)
        return str(conn.execute(query).scalar_one())


def _by_sending(web: Web, token: str) -> str:
    site, _ = read_site(web.config)
    editions = issue_editions(web.config, site, site.issues[ISSUE], "x" * 40)
    person = web.subs.profile(token)
    assert person is not None
    message = editions.build(Recipient(person.uid, person.email, language=person.language))
    found = re.search(rb"\r\nContent-Language: ([^\r]+)\r\n", message.data)
    assert found is not None
    return found.group(1).decode()


def _by_mailed_link(web: Web, token: str) -> str:
    assert web.subs.revoke_links(token) is not None
    return str(web.mails()[-1]["Content-Language"])


def _by_page(web: Web, token: str) -> str:
    html = web.client.get(f"/preferences/{token}").get_data(as_text=True)
    found = HTML_LANG.search(html)
    assert found is not None
    return found.group(1)


CALLERS: dict[str, Callable[[Web, str], str]] = {
    "ledger count (SQL)": _by_ledger_count,
    "ledger snapshot (SQL)": _by_ledger_snapshot,
    "sending": _by_sending,
    "mailed link": _by_mailed_link,
    "subscriber page": _by_page,
}


@pytest.mark.database
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "en"), ("ar", "ar"), ("fr", "de"), ("", "de")],
    ids=["offered", "offered-rtl", "not-offered", "none"],
)
def test_every_caller_gives_a_person_the_same_edition(
    web: Web, caller: str, language: str, expected: str
) -> None:
    token = _person(web, language)
    assert CALLERS[caller](web, token) == expected
    assert site_editions(web.config).for_reader(language).language == expected


def test_the_rule_theirs_if_offered_else_the_site_s() -> None:
    home = Edition("de", "de", "Deutsch")
    english = Edition("en", "de", "English")
    editions = Editions((home, english))
    assert editions.for_reader("en") is english
    assert editions.for_reader("fr") is home
    assert editions.for_reader(None) is home
    assert english.folder == "en/" and home.folder == "" and home.is_home


#: Ways a second copy of the rule would be written: a membership test on the configured or
#: rendered languages that falls back to the site's (Python), or a CASE over the language
#: column (SQL).
SECOND_COPY = re.compile(
    r"in (?:self\.)?(?:config\.languages|factories|editions?\.languages)"
    r"\s+else\s+(?:self\.)?(?:config\.)?home"
    r"|case\(\s*\(\s*(?:subscribers\.c\.)?language\.in_"
)


def test_no_second_copy_of_the_edition_rule() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "comms").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if SECOND_COPY.search(line)
    ]
    assert found == [], "decide a person's edition with Editions.for_reader"
