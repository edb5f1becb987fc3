"""Every valid address works end to end, every invalid one is refused clearly (issue 12).

The corpus (tests/addresses/corpus.json) is taken from python-email-validator's tests and the
isemail test set; tests/addresses/README.md names the sources and their licences.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comms.core.errors import MessageError
from comms.db.people import normalise_address
from comms.mail.message import needs_smtputf8, sendable_address

from .ledgerkit import run_cli
from .smtp_servers import Handler, smtp_server
from .test_send import ISSUE, import_people
from .webkit import open_web

CORPUS = json.loads((Path(__file__).parent / "addresses" / "corpus.json").read_text("utf-8"))
#: Addresses common in German lists that the old check refused (hyphen, apostrophe, …).
GERMAN = [
    "hans-peter@example.org",
    "anna-lena.mueller@example.org",
    "o'brien@example.org",
    "first_last@example.org",
    "max+newsletter@example.org",
    "2024.jahrgang@example.org",
    "a" * 64 + "@example.org",
    "leser@bücherei.example",
]
VALID_ASCII = CORPUS["valid_ascii"] + GERMAN
VALID_UTF8 = CORPUS["valid_utf8"] + ["jörg@bücherei.example", "zoë@example.org"]
INVALID = CORPUS["invalid"] + ["a" * 65 + "@example.org", "hans peter@example.org"]


def test_the_corpus_is_normalised_and_made_sendable() -> None:
    for address in VALID_ASCII + VALID_UTF8:
        normal = normalise_address(address)
        assert normal == normal.lower()
        assert normalise_address(normal) == normal  # idempotent: one stored form
        sendable = sendable_address(normal)
        assert sendable.rpartition("@")[2].isascii()  # the domain as A-labels
        assert needs_smtputf8(sendable) == (address in VALID_UTF8)
    assert sendable_address("leser@bücherei.example") == "leser@xn--bcherei-n2a.example"


#: RFC 5321 syntax, refused where addresses enter (special-use names, broken A-labels): the
#: check at sending time only guards the syntax, as everything stored passed the entry check.
SYNTAX_ONLY = {
    "me@xn--0.tld",
    "me@yy--0.tld",
    "me@anything.arpa",
    "me@valid.invalid",
    "me@link.local",
    "me@host.localhost",
}


def test_the_invalid_corpus_is_refused_with_a_reason() -> None:
    for address in INVALID:
        with pytest.raises(ValueError, match=r"\w"):
            normalise_address(address)
        if address not in SYNTAX_ONLY:
            with pytest.raises(MessageError, match="cannot send to"):
                sendable_address(address)


@pytest.mark.database
def test_spellings_of_one_address_are_one_person(tmp_path: Path) -> None:
    with open_web(tmp_path, subscribe={"rate_limit": 1000}) as web:
        for spelling in ("Max@Example.ORG", " max@example.org", "MAX@EXAMPLE.org"):
            assert web.sign_up(spelling).status_code == 200
        assert web.store.count_active() == 0
        person = web.store.find("max@example.org")
        assert person is not None and person.email == "max@example.org"
        assert web.store.find("Max@Example.Org") == person
        web.store.find("leser@xn--bcherei-n2a.example")  # A-labels are looked up too
        assert len({m["To"] for m in web.mails()}) == 1


#: Look-alikes of Latin names (issue 21, lows): a Cyrillic "а" or "е" among Latin letters, also
#: written as the A-label a forged link would carry.
HOMOGLYPHS = ["max@p\u0430ypal.com", "max@xn--pypal-4ve.com", "max@\u0435xample.org"]
#: Names that mix scripts as their writing does, and single-script names of other alphabets.
IDN_MIXES = [
    "max@例え.jp",
    "max@ドメイン名例.jp",
    "max@中文网.com",
    "max@пример.рф",
    "max@ελληνικά.gr",
]
#: Full-width and compatibility spellings (an input method in full-width mode) → the address.
FOLDED = {
    "ｍａｘ@example.org": "max@example.org",
    "Ｍａｘ@ｅｘａｍｐｌｅ.ｏｒｇ": "max@example.org",
    "ﬁx@example.org": "fix@example.org",
    "jürgen@bücher.example": "jürgen@bücher.example",
}


def test_look_alike_domains_are_refused_and_full_width_local_parts_folded() -> None:
    for address in HOMOGLYPHS:
        with pytest.raises(ValueError, match="mixes Cyrillic and Latin letters in '.*': a look"):
            normalise_address(address)
        if not address.isascii():  # at sending, plain ASCII passes on its syntax alone
            with pytest.raises(MessageError, match="a look-alike of another name"):
                sendable_address(address)
    for address in IDN_MIXES:
        assert normalise_address(address) == address
    for address, folded in FOLDED.items():
        assert normalise_address(address) == folded
    with pytest.raises(ValueError):  # IDNA refuses what NFKC would turn into "1." in a domain
        normalise_address("me@⒈wouldbeinvalid.com")


@pytest.mark.database
def test_look_alikes_change_nothing_and_full_width_is_the_same_person(tmp_path: Path) -> None:
    with open_web(tmp_path, subscribe={"rate_limit": 1000}) as web:
        for address in HOMOGLYPHS:
            response = web.sign_up(address)
            assert response.status_code == 400, address
            assert "Bitte geben Sie eine gültige E-Mail-Adresse ein" in response.get_data(True)
        for spelling in ("max@example.org", "ｍａｘ@example.org", "Ｍａｘ@ｅｘａｍｐｌｅ.org"):
            assert web.sign_up(spelling).status_code == 200
        web.mailer.join()
        assert {sent.recipient for sent in web.outbox} == {"max@example.org"}
        person = web.store.find("ｍａｘ@example.org")
        assert person is not None and person.email == "max@example.org"
        assert web.store.find("max@xn--pypal-4ve.com") is None


@pytest.mark.database
@pytest.mark.slow
def test_the_form_accepts_every_valid_and_refuses_every_invalid_address(tmp_path: Path) -> None:
    with open_web(tmp_path, subscribe={"rate_limit": 10_000}) as web:
        for address in INVALID:
            response = web.sign_up(address)
            assert response.status_code == 400, address
            assert "Bitte geben Sie eine gültige E-Mail-Adresse ein" in response.get_data(True)
        for address in VALID_ASCII + VALID_UTF8:
            response = web.sign_up(address)
            assert response.status_code == 200, address
            person = web.store.find(address)
            assert person is not None and person.email == normalise_address(address)
        web.mailer.join()
        sent_to = {sent.recipient for sent in web.outbox}
        assert sent_to == {sendable_address(normalise_address(a)) for a in VALID_ASCII + VALID_UTF8}
        assert "hans-peter@example.org" in sent_to
        assert "jörg@xn--bcherei-n2a.example" in sent_to


@pytest.mark.database
def test_the_cli_and_the_import_refuse_invalid_addresses(site_copy: Path) -> None:
    for address in ["hans peter@example.org", "test@iana.org.", '"test"@iana.org', "me@x!"]:
        code, _, err = run_cli(
            site_copy, "subscribers", "add", address, "--confirmed", "--consent-note", "Test"
        )
        assert code == 1 and "invalid e-mail address" in err, (address, err)
    code, out, err = run_cli(
        site_copy, "subscribers", "add", "Hans-Peter@Example.ORG", "--confirmed",
        "--consent-note", "Test",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run_cli(site_copy, "subscribers", "show", "hans-peter@example.org", "--json")
    assert code == 0 and json.loads(out)["email"] == "hans-peter@example.org"
    rows = [a for a in INVALID if "\n" not in a and "\r" not in a and "," not in a]
    csv = "email\n" + "".join(f'"{a.replace(chr(34), chr(34) * 2)}"\n' for a in rows)
    (site_copy / "bad.csv").write_text(csv, encoding="utf-8")
    code, out, err = run_cli(
        site_copy, "subscribers", "import", str(site_copy / "bad.csv"), "--confirmed",
        "--consent-note", "Test",
    )  # fmt: skip
    assert code == 1
    assert (out + err).count("invalid e-mail address") == len(rows), out + err


def _import_corpus(root: Path, addresses: list[str]) -> None:
    csv = "email\n" + "".join(f'"{a}"\n' for a in addresses)
    import_people(root, "corpus.csv", csv)


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.usefixtures("without_approval")
def test_every_valid_address_is_delivered_over_smtp(site_copy: Path) -> None:
    _import_corpus(site_copy, VALID_ASCII + VALID_UTF8)
    handler = Handler()
    with smtp_server(handler, enable_SMTPUTF8=True) as port:
        code, out, err = run_cli(
            site_copy, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 0, err
    arrived = {rcpt for message in handler.received for rcpt in message.rcpt_tos}
    assert arrived == {sendable_address(normalise_address(a)) for a in VALID_ASCII + VALID_UTF8}
    utf8 = [m for m in handler.received if not m.rcpt_tos[0].isascii()]
    assert len(utf8) == len(VALID_UTF8)
    for message in utf8:  # the To header carries the same UTF-8 address (RFC 6532)
        assert f"To: {message.rcpt_tos[0]}".encode() in message.data


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.usefixtures("without_approval")
def test_utf8_addresses_fail_with_a_reason_where_the_server_has_no_smtputf8(
    site_copy: Path,
) -> None:
    _import_corpus(site_copy, ["hans-peter@example.org", "jörg@bücherei.example"])
    handler = Handler()
    with smtp_server(handler, enable_SMTPUTF8=False) as port:
        code, out, err = run_cli(
            site_copy, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}"
        )
    assert code == 1, err  # nothing waits, but someone was skipped: not a success
    assert "1 delivery(ies) failed" in err
    assert [m.rcpt_tos for m in handler.received] == [["hans-peter@example.org"]]
    code, out, _ = run_cli(site_copy, "status", ISSUE)
    assert "does not offer SMTPUTF8" in out
    code, out, _ = run_cli(site_copy, "subscribers", "show", "jörg@bücherei.example", "--json")
    assert json.loads(out)["status"] == "active"  # not bounced: no server refused the address


@pytest.mark.database
def test_a_confirmation_that_cannot_be_built_is_recorded_not_a_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise MessageError("cannot send to 'x': a reason")

    monkeypatch.setattr("comms.audience.subscriptions.build_transactional", refuse)
    with open_web(tmp_path) as web:
        response = web.sign_up("hans-peter@example.org")
        assert response.status_code == 200  # the usual answer, no traceback
        report = web.store.report("hans-peter@example.org")
        assert report is not None and report["status"] == "pending"
        notes = [c["note"] or "" for c in report["consent"]]
        assert any("not sent: cannot send to 'x': a reason" in note for note in notes)
        assert web.mails() == []
