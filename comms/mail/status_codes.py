"""The one table of SMTP reply codes (RFC 5321) and enhanced status codes (RFC 3463) by class.

Both a refusal during the SMTP dialogue (`comms.mail.replies.classify`) and a delivery status
notification that arrives later (`comms.bounces.parse.classify`) ask `status_class`, so that a
code means the same for a person whenever we hear it (docs/architecture.md, "Decisions
kept"). What a class then does depends on where it was heard: only at RCPT does a hard refusal
name the address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class StatusClass(StrEnum):
    """What a failure code says about the person, our mail and our pace."""

    HARD = "hard"  # the address is wrong or gone: a bounce, the person is suppressed
    SOFT = "soft"  # temporary for this person: retried later, nobody is suppressed
    MAILBOX_FULL = "mailbox-full"  # the person's mailbox is full: soft, retried later
    POLICY = "policy"  # about our message, sender or session: pause, blame no address
    RATE = "rate"  # about our pace or volume: slow down and retry later


@dataclass(frozen=True)
class Row:
    """One code and its class.

    `code` is an enhanced code without its class digit (`X.2.2`, as RFC 3463 writes it: the
    subject and detail mean the same under 4 and 5), a subject's default (`X.1`) or a basic
    reply code (`550`). A 4xx is temporary whatever its row says, except that it keeps the
    classes `rate` and `mailbox-full`; a permanent `rate` (Gmail's 550 5.7.28) is `policy`.
    """

    code: str
    cls: StatusClass
    meaning: str


_H, _S, _F, _P, _R = (
    StatusClass.HARD,
    StatusClass.SOFT,
    StatusClass.MAILBOX_FULL,
    StatusClass.POLICY,
    StatusClass.RATE,
)

#: Every code with a class of its own; codes not listed take their subject's row (enhanced)
#: or their first digit (basic: 4xx soft, 5xx policy). X.0.0 says only "failed" (RFC 3463
#: §3.1): the basic reply code decides, as for a reply without an enhanced code.
TABLE: tuple[Row, ...] = (
    Row("X.1", _H, "address status: the recipient address is wrong"),
    Row("X.1.7", _P, "bad sender's mailbox address syntax: our envelope sender"),
    Row("X.1.8", _P, "bad sender's system address: our envelope sender's domain"),
    Row("X.2", _H, "mailbox status: the mailbox is disabled or gone"),
    Row("X.2.2", _F, "mailbox full (RFC 3463: useful only as a persistent transient error)"),
    Row("X.2.3", _P, "message length exceeds the mailbox's limit: about our message"),
    Row("X.3", _P, "mail system status: the receiving system refuses or cannot take it"),
    Row("X.4", _P, "network and routing status"),
    Row("X.4.4", _H, "unable to route: the domain has no mail server (no such domain)"),
    Row("X.5", _P, "mail delivery protocol status: our session"),
    Row("X.5.3", _S, "too many recipients (RFC 5321 §4.5.3.1.10: not a final answer)"),
    Row("X.6", _P, "message content or media status: our message"),
    Row("X.7", _P, "security or policy status: our mail, sender or server"),
    Row("X.7.28", _R, "Gmail: unusual rate of mail from our address (4.7.28: slow down)"),
    Row("421", _R, "service not available, closing the channel: busy or too many connections"),
    Row("450", _S, "mailbox unavailable for now (busy, greylisted)"),
    Row("451", _S, "local error in processing"),
    Row("452", _S, "insufficient system storage, or too many recipients"),
    Row("500", _P, "syntax error, command unrecognised"),
    Row("501", _P, "syntax error in parameters"),
    Row("502", _P, "command not implemented"),
    Row("503", _P, "bad sequence of commands"),
    Row("504", _P, "parameter not implemented"),
    Row("530", _P, "authentication required"),
    Row("535", _P, "authentication credentials invalid"),
    Row("550", _H, "mailbox unavailable (not found, no access)"),
    Row("551", _H, "user not local"),
    Row("552", _S, "exceeded storage allocation; too many recipients at RCPT (RFC 5321)"),
    Row("553", _H, "mailbox name not allowed"),
    Row("554", _P, "transaction failed"),
    Row("555", _P, "MAIL FROM/RCPT TO parameters not recognised"),
)

_ROWS = {row.code: row.cls for row in TABLE}
ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
#: What a reply says when its codes do not: quota, and a relay that gave up retrying.
_FULL_TEXT = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|insufficient (system )?storage", re.IGNORECASE
)
_SOFT_TEXT = re.compile(
    r"retry time(out)? (not reached|exceeded)|too many (connections|messages)|try again later",
    re.IGNORECASE,
)

#: Reply texts about our pace or volume, not about one recipient: Postfix's "too many
#: connections/messages", Exim's "rate limit exceeded", Microsoft's "throttled", "slow down".
_SLOWER_TEXT = re.compile(
    r"too many (?:connections|concurrent|sessions|messages|mails|e-?mails)|too fast"
    r"|slow(?:ing)? down|rate[- ]?limit|throttl|sending rate|(?:rate|limit) (?:is )?exceeded"
    r"|unusual rate",
    re.IGNORECASE,
)


def asks_slower(text: str) -> bool:
    """Whether a reply's words ask the sender to slow down (too many connections or messages,
    a rate limit): the pace, not one recipient, is the problem."""
    return bool(_SLOWER_TEXT.search(text))


def status_class(code: int | None, enhanced: str | None, text: str = "") -> StatusClass:
    """The class of a failure: its enhanced code, else its basic code, else its text.

    `code` is the basic reply code (None in a DSN that quotes none), `enhanced` an RFC 3463
    code such as "5.2.2" (or None), `text` the server's words, read only when neither code
    says more than "failed". A DSN that says nothing more is hard: the relay gave up for good.
    """
    found = ENHANCED.fullmatch(enhanced.strip()) if enhanced else None
    if code == 421:  # the server closes the session, whatever else it says (RFC 5321 §3.8)
        return StatusClass.RATE
    if found is not None and found.group(2) != "0":
        subject, detail = found.group(2), found.group(3)
        cls = _ROWS.get(f"X.{subject}.{detail}") or _ROWS.get(f"X.{subject}", StatusClass.POLICY)
        permanent = found.group(1) == "5"
    else:
        permanent = code // 100 == 5 if code is not None else found is None or found[1] == "5"
        if _FULL_TEXT.search(text):
            cls = StatusClass.MAILBOX_FULL
        elif _SOFT_TEXT.search(text):
            cls = StatusClass.SOFT
        elif code is not None:
            cls = _ROWS.get(str(code), StatusClass.POLICY if permanent else StatusClass.SOFT)
        else:
            cls = StatusClass.HARD
    if not permanent:
        return cls if cls in (StatusClass.RATE, StatusClass.MAILBOX_FULL) else StatusClass.SOFT
    return StatusClass.POLICY if cls is StatusClass.RATE else cls
