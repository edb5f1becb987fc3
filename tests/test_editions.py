"""Editions: a send to subscribers of several languages, dry runs per edition, the ledger."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.content.site import read_site
from comms.core.config import load_config
from comms.core.languages import site_editions
from comms.publish.templating import Formatter

from .conftest import ROOT
from .databases import engine_for
from .ledgerkit import run_cli
from .smtp_servers import Handler, smtp_server
from .test_send import import_people, parse
from .webkit import Web, open_web

ISSUE = "2019-07-newsletter"  # translated into English in the sample (content/issues/*.en.md)
PEOPLE = (
    "email,name,language\n"
    "dora@example.org,Dora,de\n"
    "emil@example.org,Emil,en\n"
    "lena@example.org,Lena,de-x-ls\n"
    "amal@example.org,Amal,ar\n"
)
HTML_TAG = re.compile(r"<html\b[^>]*>")


@pytest.fixture
def site(site_copy: Path) -> Path:
    """The sample site with one confirmed subscriber per enabled language."""
    import_people(site_copy, "people.csv", PEOPLE)
    return site_copy


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _html_tag(message: EmailMessage) -> str:
    found = HTML_TAG.search(_html(message))
    assert found is not None
    return found.group(0)


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_each_subscriber_gets_their_language_s_edition(site: Path) -> None:
    handler = Handler()
    with smtp_server(handler) as port:
        code, out, err = run_cli(site, "send", ISSUE, "--transport", f"smtp://127.0.0.1:{port}")
    assert code == 0, out + err
    got = {r.rcpt_tos[0]: parse(r.data) for r in handler.received}
    assert sorted(got) == [
        "amal@example.org",
        "dora@example.org",
        "emil@example.org",
        "lena@example.org",
    ]
    languages = {address: m["Content-Language"] for address, m in got.items()}
    assert languages == {
        "dora@example.org": "de",
        "emil@example.org": "en",
        "lena@example.org": "de-x-ls",
        "amal@example.org": "ar",
    }
    tags = {address: _html_tag(m) for address, m in got.items()}
    assert 'lang="de" dir="ltr"' in tags["dora@example.org"]
    assert 'lang="en" dir="ltr"' in tags["emil@example.org"]
    assert 'lang="de-x-ls"' in tags["lena@example.org"]
    assert 'lang="ar" dir="rtl"' in tags["amal@example.org"]

    english, german = got["emil@example.org"], got["dora@example.org"]
    assert english["Subject"] == "Women's Workshop in review and the 2019 special prize"
    assert german["Subject"] == "Werkstatt Frauen im Rückblick und Sonderpreis 2019"
    # The English edition: translated events in English, the rest in German and said so.
    text = _text(english)
    assert 'Regional conference "Immigrant Women in Society"' in text
    assert "Farbe bekennen: Graffiti-Workshop in Rhede (Ems)" in text
    assert "Not translated yet – shown in the original language (Deutsch)." in text
    assert "https://newsletter.example.org/en/issues/2019-07-newsletter/" in text
    # Arabic: no translation of this issue, so the German text in an Arabic frame.
    arabic = got["amal@example.org"]
    assert arabic["Subject"] == german["Subject"]
    assert "لم يُترجم بعد" in _text(arabic)
    # Leichte Sprache has its own larger type.
    assert "font-size:20px" in _html(got["lena@example.org"])
    # The same person id in every edition: one Message-ID scheme, one unsubscribe link each.
    for message in got.values():
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The ledger records which edition each person got.
    with engine_for(site / "comms.toml").connect() as db:
        rows: dict[str, str] = dict(
            db.execute(
                sa.text(
                    "SELECT s.email, d.edition FROM deliveries d JOIN subscribers s"
                    " ON s.id = d.subscriber_id"
                )
            ).all()
        )
    assert rows == languages


@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_dry_run_counts_recipients_per_edition(site: Path) -> None:
    import_people(site, "more.csv", "email,language\nfred@example.org,en\nfrida@example.org,\n")
    code, out, err = run_cli(site, "send", ISSUE, "--dry-run")
    assert code == 0, err
    assert "  recipients per edition: de 2, en 2, ar 1, de-x-ls 1" in out.splitlines()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with open_web(tmp_path) as kit:
        yield kit


@pytest.mark.database
def test_sign_up_in_english_gets_an_english_page_and_confirmation(web: Web) -> None:
    form = web.client.get("/subscribe?lang=en").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in form
    assert "<h1>Subscribe to the newsletter</h1>" in form
    assert 'action="./subscribe?lang=en"' in form
    assert '<option value="en" lang="en" selected>English</option>' in form
    assert 'hreflang="ar" href="https://newsletter.example.org/subscribe?lang=ar"' in form
    token = web.csrf("/subscribe?lang=en")
    data = {"email": "emil@example.org", "language": "en", "csrf_token": token}
    answer = web.client.post("/subscribe?lang=en", data=data).get_data(as_text=True)
    assert "<h1>Please confirm your subscription</h1>" in answer
    [mail] = web.mails()
    assert mail["Content-Language"] == "en"
    assert mail["Subject"] == "Please confirm your newsletter subscription"
    person = web.store.find("emil@example.org")
    assert person is not None and person.language == "en"
    page = web.client.get(web.confirm_path()).get_data(as_text=True)
    assert '<html lang="en"' in page  # the person's language, without ?lang=


@pytest.mark.database
def test_the_language_chosen_on_the_form_decides_the_confirmation_mail(web: Web) -> None:
    assert web.sign_up("amal@example.org", language="ar").status_code == 200
    [mail] = web.mails()
    assert mail["Content-Language"] == "ar"
    html = mail.get_body(("html",))
    assert html is not None
    assert 'lang="ar" dir="rtl"' in str(html.get_content())
    assert mail["Subject"] == "يرجى تأكيد اشتراكك في النشرة"
    person = web.store.find("amal@example.org")
    assert person is not None and person.language == "ar"
    # An unknown language is not stored: the site's.
    web.sign_up("zoe@example.org", language="xx")
    zoe = web.store.find("zoe@example.org")
    assert zoe is not None and zoe.language == "de"


@pytest.mark.database
def test_a_mailed_data_link_comes_in_the_person_s_language(web: Web) -> None:
    assert web.sign_up("amal@example.org", language="ar").status_code == 200
    assert web.client.post(web.confirm_path()).status_code == 200
    person = web.store.find("amal@example.org")
    assert person is not None
    path = f"/preferences/{web.subs.preferences_token(person)}"
    data = {"csrf_token": web.csrf(path), "really": "yes"}
    asked = web.client.post(path + "/delete", data=data)
    assert asked.status_code == 200
    assert '<html lang="ar" dir="rtl">' in asked.get_data(as_text=True)
    mail = web.mails()[-1]
    assert mail["Content-Language"] == "ar"
    assert mail["Subject"] == "حذف بيانات نشرتك"
    html = mail.get_body(("html",))
    assert html is not None and 'lang="ar" dir="rtl"' in str(html.get_content())


def test_dates_are_worded_in_each_edition_s_language() -> None:
    config = load_config(ROOT / "comms.toml")
    site, _ = read_site(config)
    event = site.events["2019-06-21-regionalkonferenz-lueneburg"]
    worded = {
        edition.language: Formatter(config, edition).event_when(event)
        for edition in site_editions(config).all
    }
    assert worded == {
        "de": "Freitag, 21. Juni 2019, 10:00–15:30\u00a0Uhr",
        "en": "Friday, 21 June 2019, 10:00–15:30",
        "de-x-ls": "Freitag, 21. Juni 2019, 10:00–15:30\u00a0Uhr",
        "ar": "الجمعة\u060c 21 يونيو 2019\u060c 10:00–15:30",
    }
