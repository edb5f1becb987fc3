"""The bounce parser on the DSN corpus (tests/bounces/, sources in its README) and VERP."""

from __future__ import annotations

from pathlib import Path

import pytest

from comms.bounces.parse import Kind, classify, read_report
from comms.mail.verp import read_verp, verp_address

CORPUS = Path(__file__).resolve().parent / "bounces"
VERP = "bounces+VERP@example.org"

#: sample → (kind, status the report states, failed recipient it names)
EXPECTED = {
    "postfix-hard.eml": (Kind.HARD, "5.1.1", "kijitora@example.org"),
    "postfix-soft-mailbox-full.eml": (Kind.SOFT, "5.2.2", "neko@nyaaan.example.org"),
    "exim-hard.eml": (Kind.HARD, "5.1.1", "kijitora@neko.example.co.jp"),
    "exim-soft-retry-timeout.eml": (Kind.SOFT, None, "kijitora@example.com"),
    "office365-hard.eml": (Kind.HARD, "5.1.1", "kijitora@cr3.neko.nyaan.jp"),
    "office365-soft-mailbox-full.eml": (Kind.SOFT, "5.2.2", "kijitora@cr.neko.nyaan.jp"),
    "exchange2007-hard.eml": (Kind.HARD, "5.1.1", "mikeneko@example.co.jp"),
    "gmail-hard.eml": (Kind.HARD, "5.1.1", "userunknown@example.jp"),
    "gmail-soft-mailbox-full.eml": (Kind.SOFT, "5.2.2", "mailboxfull@bouncehammer.jp"),
    "gmail-delayed.eml": (Kind.DELAYED, "4.2.2", "kijitora@example.jp"),
    "gmx-hard.eml": (Kind.HARD, "5.1.1", "shironeko@example.jp"),
    "gmx-soft-mailbox-full.eml": (Kind.SOFT, "5.2.2", "shironeko@example.jp"),
    "t-online-soft.eml": (Kind.SOFT, "4.0.0", "nobody.example@t-online.de"),
    "arf-abuse.eml": (Kind.COMPLAINT, None, None),
    "autoreply-out-of-office.eml": (Kind.AUTOREPLY, None, None),
    "not-a-bounce.eml": (Kind.OTHER, None, None),
}


def test_the_corpus_is_complete_and_every_sample_is_named_in_the_readme() -> None:
    samples = {p.name for p in CORPUS.glob("*.eml")}
    assert samples == set(EXPECTED)
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in samples)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_is_classified_with_its_status_and_recipient(name: str) -> None:
    kind, status, recipient = EXPECTED[name]
    report = read_report((CORPUS / name).read_bytes())
    assert report.kind is kind
    worst = report.worst()
    if recipient is None:
        assert worst is None or worst.recipient is None
    else:
        assert worst is not None
        assert (worst.status, worst.recipient) == (status, recipient)
        assert worst.diagnostic  # the server's words go into the consent ledger


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"not-a-bounce.eml"}))
def test_the_verp_envelope_is_found_in_every_report(name: str) -> None:
    # DSNs name it as their recipient, the ARF report in the original's Return-Path.
    report = read_report((CORPUS / name).read_bytes())
    assert VERP.lower() in report.envelope


def test_the_original_message_id_is_read_from_the_returned_headers() -> None:
    report = read_report((CORPUS / "t-online-soft.eml").read_bytes())
    expected = "<2025-08-newsletter.0123456789abcdef01234567@newsletter.example.org>"
    assert report.original_message_id == expected


@pytest.mark.parametrize(
    ("status", "action", "diagnostic", "kind"),
    [
        ("5.1.1", "failed", "550 user unknown", Kind.HARD),
        ("5.0.0", "failed", "550 no such user", Kind.HARD),
        ("5.2.1", "failed", "mailbox disabled", Kind.HARD),
        ("5.4.4", "failed", "no MX", Kind.HARD),
        ("5.1.8", "failed", "553 5.1.8 sender address rejected", Kind.SOFT),  # our sender
        ("5.2.3", "failed", "message too large for this mailbox", Kind.SOFT),
        ("5.0.0", "failed", "554 blocked", Kind.SOFT),  # 5.0.0: the reply code decides
        ("5.1.1", "failed", "550 5.1.1 mailbox full?", Kind.HARD),  # the code over the words
        ("5.2.2", "failed", "mailbox full", Kind.SOFT),
        ("5.0.0", "failed", "552 Quota exceeded", Kind.SOFT),
        ("5.7.1", "failed", "blocked as spam", Kind.SOFT),  # about us, not the address
        ("4.4.1", "failed", "connection timed out", Kind.SOFT),
        ("4.2.2", "delayed", "mailbox full", Kind.DELAYED),
        ("2.0.0", "delivered", "ok", Kind.OTHER),
        (None, "failed", "retry timeout exceeded", Kind.SOFT),
        (None, "failed", "user unknown", Kind.HARD),
    ],
)
def test_status_codes_are_classified(
    status: str | None, action: str, diagnostic: str, kind: Kind
) -> None:
    assert classify(status, action, diagnostic) is kind


def test_verp_addresses_name_their_delivery_and_resist_forgery() -> None:
    address = verp_address("secret", 42, "bounces", "example.org")
    assert address.startswith("bounces+42-") and address.endswith("@example.org")
    assert len(address.partition("@")[0]) <= 64
    found = read_verp("secret", address, "bounces")
    assert found is not None and (found.delivery_id, found.valid) == (42, True)
    assert read_verp("secret", f"<{address.upper()}>", "bounces") == found  # case and brackets
    forged = address.replace("bounces+42-", "bounces+43-")
    assert read_verp("secret", forged, "bounces") == type(found)(43, False)
    assert read_verp("other secret", address, "bounces") == type(found)(42, False)
    assert read_verp("secret", "newsletter@example.org", "bounces") is None
