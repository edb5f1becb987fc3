"""Message assembly: fixture messages parsed back and checked (docs/requirements.md E1–E12, E14)."""

from __future__ import annotations

import base64
import dataclasses
import re
import unicodedata
from datetime import datetime
from email import message_from_string
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import formataddr
from pathlib import Path
from zoneinfo import ZoneInfo

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from comms.content.site import read_site
from comms.content.urls import PREFERENCES_URL, UNSUBSCRIBE_URL
from comms.core.config import load_config
from comms.core.errors import ConfigError, MessageError
from comms.mail import message
from comms.mail.message import MessageFactory, Recipient
from comms.mail.tokens import read_token
from comms.publish.render import render_issue

from .conftest import ROOT
from .issue_sample import SECRET, config_for, rendered_issue

WINTER = datetime(2020, 2, 4, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
#: The one-click link names its issue (`?issue=`): unsubscribes are counted per issue.
UNSUBSCRIBE = re.compile(
    r"<https://newsletter\.example\.org/unsubscribe/([A-Za-z0-9_.-]+)\?issue=([a-z0-9-]+)>"
)


def _parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.fixture
def factory(tmp_path: Path) -> MessageFactory:
    return MessageFactory(config_for(tmp_path), rendered_issue(), SECRET, date=WINTER)


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = (p for p in msg.walk() if not p.is_multipart())
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    # Parsed from the wire, line ends are CRLF; the rendered issue uses "\n".
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def test_headers_structure_and_encodings(factory: MessageFactory) -> None:
    recipient = Recipient("17", "jörg@example.org".replace("ö", "oe"), "Jörg Müller-Lüdenscheidt")
    out = factory.build(recipient)
    raw = out.data
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # E6: the header block is pure ASCII
    msg = _parse(raw)
    for name in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "List-Id"):
        assert len(msg.get_all(name) or []) == 1, name  # E1
    assert len(msg["From"].addresses) == 1
    assert msg["From"].addresses[0].display_name == "Bündnis „Niedersachsen packt an“"
    assert msg["From"].addresses[0].addr_spec == "newsletter@example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == "info@example.org"
    assert msg["To"].addresses[0].display_name == "Jörg Müller-Lüdenscheidt"
    assert msg["To"].addresses[0].addr_spec == "joerg@example.org"
    assert msg["Subject"] == rendered_issue().subject  # E6: umlauts and „“ round-trip
    assert msg["Date"] == "Tue, 04 Feb 2020 09:00:00 +0100"  # E3: the site's offset
    assert msg["Precedence"] == "bulk"
    assert msg["Feedback-ID"] is None
    # E4: text first, HTML last, both UTF-8.
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    assert [p.get_content_charset() for p in leaves] == ["utf-8", "utf-8"]
    assert [p["Content-Transfer-Encoding"] for p in leaves] == ["quoted-printable"] * 2
    # E5: every line ≤ 998 octets; bodies ≤ 76 (quoted-printable), headers folded.
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body_lines = raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 76
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(byte < 128 for byte in raw)


def test_bodies_round_trip_with_the_recipients_links(factory: MessageFactory) -> None:
    out = factory.build(Recipient("u-42", "leserin@example.org"))
    msg = _parse(out.data)
    header = msg["List-Unsubscribe"]
    match = UNSUBSCRIBE.fullmatch(header)  # E7: exactly one https URI, no mailto by default
    assert match is not None
    token, slug = match.groups()
    assert read_token(SECRET, "unsubscribe", token) == "u-42"
    assert slug == rendered_issue().slug
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = f"https://newsletter.example.org/unsubscribe/{token}?issue={slug}"
    text, html = _parts(msg)
    prefs = re.search(r"https://newsletter\.example\.org/preferences/([A-Za-z0-9_.-]+)", text)
    assert prefs is not None
    assert read_token(SECRET, "preferences", prefs.group(1)) == "u-42"
    preferences = prefs.group(0)
    issue = rendered_issue()
    # E8: the visible links in both parts; everything else is the rendered issue unchanged.
    expected_text = issue.text.replace(UNSUBSCRIBE_URL, unsubscribe)
    expected_html = issue.html.replace(UNSUBSCRIBE_URL, unsubscribe)
    assert text == expected_text.replace(PREFERENCES_URL, preferences)
    assert html == expected_html.replace(PREFERENCES_URL, preferences)
    assert f'<a href="{unsubscribe}"' in html
    assert "Musterstraße 1, 30159 Hannover" in text and "100 % ehrenamtlich =)" in html


def test_the_copy_for_smtp_is_the_message_with_its_dot_lines_doubled(tmp_path: Path) -> None:
    issue = rendered_issue()
    # Lines that start with '.' in the fixed text (quoted-printable keeps them as they are).
    issue = dataclasses.replace(issue, text=issue.text + "...\n.und weiter\n")
    factory = MessageFactory(config_for(tmp_path), issue, SECRET, date=WINTER)
    copies = 0
    for n in range(1000):
        # Uids of many lengths move the links' soft line breaks, some before a '.'.
        uid = "u" * (n % 40) + str(n)
        message = factory.build(Recipient(uid, f"leser{n}@example.org", "Leserin", "de", n + 1))
        assert b"\r\n..und weiter\r\n" in message.data.replace(b"\r\n.", b"\r\n..")
        if message.wire is None:  # a link that starts a line with '.': the transport stuffs
            body = message.data.split(b"\r\n\r\n", 1)[1]
            assert b"\r\n." in body.replace(b"\r\n...\r\n", b"").replace(b"\r\n.und", b"")
            continue
        copies += 1
        assert message.wire == message.data.replace(b"\r\n.", b"\r\n..")
    assert 900 < copies < 1000


def test_a_name_of_atoms_is_written_as_formataddr_writes_it(factory: MessageFactory) -> None:
    atext = "".join(chr(c) for c in range(33, 127) if chr(c) not in '()<>[]:;@\\,."')
    # Short enough for one line, with no "=?" (those names are written as encoded words).
    chunks = [f"Anna {atext[n : n + 20]} Maier" for n in range(0, len(atext), 20)]
    chunks = [name for name in chunks if "=?" not in name]
    for name in [*atext, *chunks, "  Leserin   Nr 5  "]:
        message = factory.build(Recipient("u1", "leser@example.org", name))
        expected = formataddr((" ".join(name.split()), "leser@example.org"))
        assert _parse(message.data)["To"] == expected
        assert f"\r\nTo: {expected}\r\n".encode() in message.data


def test_message_id_is_stable_unique_and_under_the_sites_domain(tmp_path: Path) -> None:
    first = MessageFactory(config_for(tmp_path), rendered_issue(), SECRET)
    again = MessageFactory(config_for(tmp_path), rendered_issue(), SECRET)
    other_issue = MessageFactory(config_for(tmp_path), rendered_issue("2020-04-newsletter"), SECRET)
    ids = {first.build(Recipient(str(i), f"r{i}@example.org")).message_id for i in range(10_000)}
    assert len(ids) == 10_000
    out = first.build(Recipient("7", "r7@example.org"))
    assert re.fullmatch(r"<[^@]+@newsletter\.example\.org>", out.message_id)  # E2
    assert _parse(out.data)["Message-ID"] == out.message_id
    assert again.build(Recipient("7", "other@example.org")).message_id == out.message_id
    assert other_issue.build(Recipient("7", "r7@example.org")).message_id != out.message_id
    assert out.key == "2020-02-newsletter/7"
    assert out.envelope_from == "newsletter@example.org"
    assert out.recipient == "r7@example.org"
    # Keyed (issue 21.3): another secret gives another id, so none follows from the uid alone.
    other_key = MessageFactory(config_for(tmp_path), rendered_issue(), SECRET + "-other")
    assert other_key.build(Recipient("7", "r7@example.org")).message_id != out.message_id
    # The same on every rebuild: pinned, as a bounce of a mail sent months ago quotes it.
    assert out.message_id == "<2020-02-newsletter.21755169e8870f1112d19af9@newsletter.example.org>"


def test_optional_headers_from_config(tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        '[mail]\nfeedback_id = "newsletter:nspa2020"\nunsubscribe_mailto = '
        '"abmelden@example.org"\nprecedence = "none"\n[sender]\nreply_to = "redaktion@example.org"'
        "\n",
    )
    factory = MessageFactory(config, rendered_issue(), SECRET, date=WINTER)
    first, second = (factory.build(Recipient(u, f"{u}@example.org")) for u in ("a1", "b2"))
    msg = _parse(first.data)
    assert msg["Feedback-ID"] == "newsletter:nspa2020"  # E11: constant per stream
    assert _parse(second.data)["Feedback-ID"] == msg["Feedback-ID"]
    assert msg["Precedence"] is None
    assert msg["Reply-To"].addresses[0].addr_spec == "redaktion@example.org"
    https, mailto = (v.strip() for v in msg["List-Unsubscribe"].split(","))
    assert UNSUBSCRIBE.fullmatch(https)
    assert mailto == "<mailto:abmelden@example.org?subject=Abmelden>"


def test_list_id_names_the_list_under_its_domain(tmp_path: Path) -> None:
    values = set()
    for slug in ("2020-02-newsletter", "2020-04-newsletter"):
        factory = MessageFactory(config_for(tmp_path), rendered_issue(slug), SECRET)
        values.add(_parse(factory.build(Recipient("1", "a@example.org")).data)["List-Id"])
    assert values == {
        "Bündnis „Niedersachsen packt an“ <newsletter.niedersachsen-packt-an.example.org>"
    }  # E10: one value for every issue of the list


def test_idn_domains_become_punycode_and_unusable_addresses_fail(
    factory: MessageFactory,
) -> None:
    out = factory.build(Recipient("1", "info@bündnis.example"))
    assert out.recipient == "info@xn--bndnis-3ya.example"
    assert _parse(out.data)["To"] == "info@xn--bndnis-3ya.example"
    for address in ("a@b@example.org", "x@example.org>\r\nBcc: y@z.de", "hans peter@example.org"):
        with pytest.raises(MessageError, match="cannot send to"):
            factory.build(Recipient("2", address))


def test_utf8_local_parts_are_written_as_utf8(factory: MessageFactory) -> None:
    out = factory.build(Recipient("1", "jörg@bücherei.example", "Jörg Müller"))
    assert out.recipient == "jörg@xn--bcherei-n2a.example"
    parsed = message_from_string(out.data.decode("utf-8"), policy=default)
    to = parsed["To"]
    assert to.addresses[0].addr_spec == "jörg@xn--bcherei-n2a.example"
    assert to.addresses[0].display_name == "Jörg Müller"


def test_names_cannot_inject_headers(factory: MessageFactory) -> None:
    evil = 'Eve "the, boss"\r\nBcc: victim@example.org'
    msg = _parse(factory.build(Recipient("1", "eve@example.org", evil)).data)
    assert msg["Bcc"] is None
    assert msg["To"].addresses[0].display_name == 'Eve "the, boss" Bcc: victim@example.org'


@pytest.mark.parametrize("subject", ["Hallo\r\nBcc: x@example.org", "Hallo\nWelt"])
def test_line_breaks_in_the_subject_are_refused(tmp_path: Path, subject: str) -> None:
    issue = dataclasses.replace(rendered_issue(), subject=subject)
    with pytest.raises(MessageError, match="^header Subject: "):
        MessageFactory(config_for(tmp_path), issue, SECRET)


def test_percent_signs_and_placeholders_in_odd_places(tmp_path: Path) -> None:
    issue = dataclasses.replace(
        rendered_issue(),
        subject="100 % %s Spende",
        text=f"{UNSUBSCRIBE_URL}{PREFERENCES_URL}%d%%",
        html=f"<p>{UNSUBSCRIBE_URL}</p>",
    )
    factory = MessageFactory(config_for(tmp_path), issue, SECRET)
    msg = _parse(factory.build(Recipient("9", "a@example.org")).data)
    text, html = _parts(msg)
    assert msg["Subject"] == "100 % %s Spende"
    assert re.fullmatch(r"https://\S+/unsubscribe/9\.\S+https://\S+/preferences/9\.\S+%d%%", text)
    assert re.fullmatch(r"<p>https://\S+/unsubscribe/9\.\S+</p>", html)


def test_a_secret_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        MessageFactory(config_for(tmp_path), rendered_issue(), "")
    assert info.value.problems == ["COMMS_SECRET_KEY is not set: it signs the unsubscribe links"]


def test_proof_messages_point_at_nobody_and_are_never_deduplicated(
    factory: MessageFactory,
) -> None:
    first, second = (
        factory.build_proof("Redaktion@Example.org"),
        factory.build_proof("redaktion@example.org"),
    )
    assert first.message_id != second.message_id
    assert first.key == second.key
    assert re.fullmatch(r"2020-02-newsletter/proof-[0-9a-f]{16}", first.key)
    token = UNSUBSCRIBE.fullmatch(_parse(first.data)["List-Unsubscribe"])
    assert token is not None
    assert read_token(SECRET, "unsubscribe", token.group(1)) == first.key.split("/")[1]


def _dkim_setup(tmp_path: Path) -> tuple[MessageFactory, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    config = config_for(
        tmp_path,
        '[dkim]\nselector = "nl2020"\ndomain = "example.org"\nkey_file = "dkim.pem"\n'
        '[mail]\nfeedback_id = "newsletter:nspa1"\n',
    )
    return MessageFactory(config, rendered_issue(), SECRET), record


def test_dkim_signature_verifies_and_covers_the_list_headers(tmp_path: Path) -> None:
    factory, record = _dkim_setup(tmp_path)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl2020._domainkey.example.org."
        return record

    signed = factory.build(Recipient("1", "a@example.org")).data
    assert signed.startswith(b"DKIM-Signature: ")
    assert dkim.verify(signed, dnsfunc=dns)
    tags = dict(
        item.strip().split("=", 1)
        for item in _parse(signed)["DKIM-Signature"].replace(" ", "").split(";")
        if item.strip()
    )
    signed_headers = [h.lower() for h in tags["h"].split(":")]
    for name in ("list-unsubscribe", "list-unsubscribe-post", "from", "subject"):
        assert signed_headers.count(name) == 2  # oversigned
    for name in ("to", "date", "message-id", "list-id", "feedback-id", "mime-version"):
        assert name in signed_headers
    assert (tags["c"], tags["d"], tags["s"], "l" in tags) == (
        "relaxed/relaxed",
        "example.org",
        "nl2020",
        False,
    )
    tampered = signed.replace(b"Musterstra=C3=9Fe", b"Musterstra=C3=9F")
    assert tampered != signed and not dkim.verify(tampered, dnsfunc=dns)
    head, body = signed.split(b"\r\n\r\n", 1)
    extra = head + b"\r\nList-Unsubscribe: <https://evil.example/u>\r\n\r\n" + body
    assert not dkim.verify(extra, dnsfunc=dns)


def test_a_bad_dkim_key_stops_before_sending(tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").write_text("not a key")
    config = config_for(
        tmp_path, '[dkim]\nselector = "s"\ndomain = "example.org"\nkey_file = "dkim.pem"\n'
    )
    with pytest.raises(ConfigError) as info:
        MessageFactory(config, rendered_issue(), SECRET)
    assert info.value.problems == [
        f"'dkim.key_file': {tmp_path / 'dkim.pem'} holds no PEM private key"
    ]


@pytest.mark.parametrize("part", ["text", "html"])
def test_an_issue_without_an_unsubscribe_link_is_refused(tmp_path: Path, part: str) -> None:
    issue = rendered_issue()
    issue = dataclasses.replace(issue, **{part: getattr(issue, part).replace(UNSUBSCRIBE_URL, "")})
    with pytest.raises(MessageError) as info:
        MessageFactory(config_for(tmp_path), issue, SECRET)
    name = {"text": "text", "html": "HTML"}[part]
    assert str(info.value) == f"the {name} part of the issue has no %%UNSUBSCRIBE_URL%% link"


def test_a_clipping_size_html_part_gives_a_warning(tmp_path: Path) -> None:
    assert MessageFactory(config_for(tmp_path), rendered_issue(), SECRET).warnings == []
    big = MessageFactory(config_for(tmp_path), rendered_issue(blocks=150), SECRET)
    assert len(big.warnings) == 1
    assert big.warnings[0].startswith("the HTML part is 1")
    assert big.warnings[0].endswith(
        "may hide the footer with the unsubscribe link (keep it under 90,000)"
    )


def test_long_names_are_folded_like_the_email_package_does(factory: MessageFactory) -> None:
    name = "Prof. Dr. Jürgen-Ömer Müller-Lüdenscheidt, Integrationsbeauftragter (Göttingen)"
    raw = factory.build(Recipient("1", "jm@example.org", name)).data
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to = re.search(r"^To: .*?(?=^\S)", head, re.M | re.S)
    assert to is not None
    assert all(len(line) <= 78 for line in to.group(0).split("\r\n"))
    assert _parse(raw)["To"].addresses[0].addr_spec == "jm@example.org"
    # RFC 2047 decoding gives the name back exactly. (The email package's address parser adds
    # a space before a comma that starts an encoded-word, so it is not the judge here.)
    encoded = to.group(0).removeprefix("To: ").rsplit("<", 1)[0]
    assert str(make_header(decode_header(encoded))) == name


def test_real_rendered_issues_make_valid_messages() -> None:
    config = load_config(ROOT / "comms.toml", environ={})
    site, _ = read_site(config)
    assert site.issues
    for slug, issue in site.issues.items():
        rendered = render_issue(config, site, issue)
        factory = MessageFactory(config, rendered, SECRET, date=WINTER)
        assert factory.warnings == []
        out = factory.build(Recipient("s-1", "leserin@example.org", "Lea Müller"))
        raw = out.data
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert all(byte < 128 for byte in raw)
        msg = _parse(raw)
        assert msg["Subject"] == issue.subject
        assert [p.get_content_type() for p in msg.walk()][1:] == ["text/plain", "text/html"]
        match = UNSUBSCRIBE.fullmatch(msg["List-Unsubscribe"])
        assert match is not None
        token, named = match.groups()
        assert named == slug
        unsubscribe = f"https://newsletter.example.org/unsubscribe/{token}?issue={slug}"
        text, html = _parts(msg)
        assert PREFERENCES_URL not in text + html and UNSUBSCRIBE_URL not in text + html
        assert unsubscribe in text, slug
        assert f'href="{unsubscribe}"' in html, slug
        prefs = re.search(r"https://newsletter\.example\.org/preferences/([\w.-]+)", html)
        assert prefs is not None and read_token(SECRET, "preferences", prefs.group(1)) == "s-1"
        assert text == rendered.text.replace(UNSUBSCRIBE_URL, unsubscribe).replace(
            PREFERENCES_URL, prefs.group(0)
        )


def test_a_sender_address_that_needs_smtputf8_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config_for(tmp_path, '[sender]\naddress = "bündnis@example.org"\n')
    assert "'sender.address': the part before the @ must be ASCII" in str(info.value)
    # An internationalised domain is fine: it goes out as A-labels.
    config = config_for(tmp_path, '[sender]\naddress = "info@Bündnis.example"\n')
    factory = MessageFactory(config, rendered_issue(), SECRET)
    assert factory.envelope_from == "info@xn--bndnis-3ya.example"


HOSTILE_NAMES = [
    "Evil\x00Name\x08",
    "A" * 200,
    "x" * 5000,
    "a b " * 60,
    "Ä" * 200,
    '"' * 100,
    "\\" * 80,
    "(" * 80,
    "Müller-Lüdenscheidt, Jörg " * 10,
    "Eve\r\nBcc: victim@example.org",
    "Eve\x1b[31m\x7f",
    "x\u202eevil\u200b\ufeff\u2028\u2029",
    "=?utf-8?q?Bank?=",
    "a,b;c:d<e>@f.example",
    "To: To: group:;",
    "😀" * 120,
    " ",
    "\t\x00",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_give_messages_without_defects(factory: MessageFactory, name: str) -> None:
    raw = factory.build(Recipient("1", "eve@example.org", name)).data
    msg = _parse(raw)
    assert msg.defects == []
    for header, value in msg.items():
        assert value.defects == (), (header, value.defects)
    to = msg["To"]
    assert len(msg.get_all("To") or []) == 1
    assert [a.addr_spec for a in to.addresses] == ["eve@example.org"]
    shown = to.addresses[0].display_name
    # (The parser puts a space between adjacent encoded-words; see the test above.)
    assert len(shown.replace(" ", "")) <= 100
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in shown)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    folded = re.search(r"^To: .*?(?=^\S)", head, re.M | re.S)
    assert folded is not None
    assert all(len(line) <= 78 for line in folded.group(0).split("\r\n"))
    assert "Bcc" not in msg
    if name.startswith("=?"):  # shown as typed, not decoded
        assert shown == name


def test_the_editions_of_an_issue_fold_only_the_headers_they_do_not_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From, Reply-To and List-Id are the same in every edition: folded (RFC 2047, slow in the
    email package) once per process, each edition adds only its subject."""
    made: list[str] = []

    class Counting(EmailMessage):
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append("folded")
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(message, "EmailMessage", Counting)
    config = config_for(tmp_path)
    first = MessageFactory(config, rendered_issue(), SECRET, date=WINTER)
    before = len(made)
    other = dataclasses.replace(rendered_issue(), subject="Die Ausgabe in Leichter Sprache")
    second = MessageFactory(config, other, SECRET, date=WINTER)
    assert len(made) - before == 1
    heads = [
        BytesParser(policy=default).parsebytes(f.build(Recipient("u1", "a@example.org")).data)
        for f in (first, second)
    ]
    assert str(heads[1]["Subject"]) == "Die Ausgabe in Leichter Sprache"
    for name in ("From", "Reply-To", "List-Id", "Date"):
        assert str(heads[0][name]) == str(heads[1][name])
    # A refused header is refused again, not taken from the kept ones.
    bad = dataclasses.replace(rendered_issue(), subject="Hallo\r\nBcc: alle@example.org")
    for _ in range(2):
        with pytest.raises(MessageError):
            MessageFactory(config, bad, SECRET, date=WINTER)
