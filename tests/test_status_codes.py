"""One table of SMTP and RFC 3463 status codes: RCPT time and DSNs read every code alike."""

from __future__ import annotations

import re

import pytest

from comms.bounces.parse import Kind
from comms.bounces.parse import classify as classify_dsn
from comms.core.errors import PermanentFailure, PolicyRejection, TemporaryFailure
from comms.mail.replies import asks_to_slow_down
from comms.mail.replies import classify as classify_reply
from comms.mail.status_codes import TABLE, Row, StatusClass, status_class

from .conftest import ROOT

#: Neutral words: neither a full mailbox nor a relay that gave up.
WORDS = "refused by the receiving server"


def _samples(row: Row) -> list[tuple[int, str | None]]:
    """(basic code, enhanced code) pairs a server could send for this row, 5xx and 4xx."""
    if row.code.isdigit():
        return [(int(row.code), None)]
    parts = row.code.split(".")
    detail = parts[2] if len(parts) == 3 else "99"  # a detail no row names: the subject's
    return [(550, f"5.{parts[1]}.{detail}"), (450, f"4.{parts[1]}.{detail}")]


def _expected(cls: StatusClass, code: int) -> tuple[type[Exception], Kind]:
    if code >= 500 and cls is StatusClass.HARD:
        return PermanentFailure, Kind.HARD
    if code >= 500 and cls in (StatusClass.POLICY, StatusClass.RATE):
        return PolicyRejection, Kind.SOFT  # a DSN never pauses a campaign: counted, not out
    return TemporaryFailure, Kind.SOFT


CASES = [(row, code, enhanced) for row in TABLE for code, enhanced in _samples(row)]


@pytest.mark.parametrize(
    ("row", "code", "enhanced"), CASES, ids=[f"{c}-{e or '-'}" for _, c, e in CASES]
)
def test_every_code_means_the_same_at_rcpt_time_and_in_a_dsn(
    row: Row, code: int, enhanced: str | None
) -> None:
    reply = f"{enhanced} {WORDS}" if enhanced else WORDS
    at_rcpt = classify_reply(code, reply, "RCPT TO")
    # A DSN states an enhanced code; Postfix writes 5.0.0 when the server gave only a basic one.
    status = enhanced or f"{str(code)[0]}.0.0"
    in_dsn = classify_dsn(status, "failed", f"{code} {reply}")
    assert (type(at_rcpt), in_dsn) == _expected(row.cls, code)
    # The rule itself: a person is suppressed at RCPT time exactly when a DSN would do so.
    assert (type(at_rcpt) is PermanentFailure) == (in_dsn is Kind.HARD)


def test_the_decided_codes() -> None:
    """Mailbox full is soft, no such domain hard, in both places (docs/architecture.md,
    "Decisions kept")."""
    assert status_class(550, "5.2.2") is StatusClass.MAILBOX_FULL
    assert status_class(None, "5.4.4") is StatusClass.HARD
    assert type(classify_reply(550, "5.2.2 Mailbox full", "RCPT TO")) is TemporaryFailure
    assert type(classify_reply(550, "5.4.4 No such domain", "RCPT TO")) is PermanentFailure
    assert classify_dsn("5.2.2", "failed", "552 5.2.2 quota") is Kind.SOFT
    assert classify_dsn("5.4.4", "failed", "no MX for example.invalid") is Kind.HARD


def test_each_code_has_one_row() -> None:
    codes = [row.code for row in TABLE]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"X\.\d{1,3}(\.\d{1,3})?|[45]\d\d", c) for c in codes)


@pytest.mark.parametrize(
    ("code", "enhanced", "slower"),
    [(421, "4.3.2", True), (451, "4.7.28", True), (451, "4.7.1", False), (452, "4.2.2", False)],
)
def test_the_rate_class_is_what_slows_the_sending_down(
    code: int, enhanced: str, slower: bool
) -> None:
    error = classify_reply(code, f"{enhanced} {WORDS}", "RCPT TO")
    assert asks_to_slow_down(error) is slower


def test_no_second_table_of_status_codes() -> None:
    """Enhanced codes are written down in comms.mail.status_codes and nowhere else that
    classifies replies or reports (a second copy is how the two disagreed before)."""
    pattern = re.compile(r"""["'][245x]\.\d+\.|==\s*\(\d, \d\)|startswith\(\(?["'][245]\.""")
    found = []
    for folder in ("comms/mail", "comms/bounces"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "status_codes.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
