"""Classify SMTP replies and HTTP API responses as temporary, permanent or policy failures."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from comms.core.clock import now_utc
from comms.core.errors import DeliveryError, PermanentFailure, PolicyRejection, TemporaryFailure
from comms.mail.status_codes import ENHANCED, StatusClass, asks_slower, status_class

_RETRIED = (StatusClass.SOFT, StatusClass.MAILBOX_FULL, StatusClass.RATE)


def asks_to_slow_down(error: DeliveryError) -> bool:
    """Whether a temporary failure concerns the sender's pace rather than one recipient.

    421 at any stage (the server closes the session: busy, too many connections), HTTP 429,
    Gmail's 4.7.28 (unusual rate), or a reply that asks to slow down or reports too many
    connections or messages. A greylisting `451 4.7.1 try again later` at RCPT and other
    per-recipient deferrals (a full mailbox, 4.2.x, 4.4.x) are not: they are retried later
    without slowing the others down.
    """
    if error.code == 429:  # HTTP Too Many Requests
        return True
    if error.code is not None and status_class(error.code, error.enhanced) is StatusClass.RATE:
        return True
    return error.code is not None and asks_slower(str(error))


def classify(code: int, text: bytes | str, stage: str, where: str = "") -> DeliveryError:
    """The exception for a failed SMTP reply (docs/requirements.md S5).

    The class comes from the one table of codes (`comms.mail.status_codes`), shared with DSN
    parsing. 4xx, and a 5xx whose class is soft, mailbox-full or rate → temporary (retried,
    nobody suppressed). A hard class at RCPT → permanent (a bounce): only there does a refusal
    name the address. Every other 5xx is about our message or session → policy: stop the
    campaign and blame no address. After RCPT only an enhanced code can make a 5xx temporary:
    a basic code alone cannot tell a full mailbox from a message too big (552) there.
    """
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    reply = " ".join(reply.split())
    match = ENHANCED.match(reply)  # the enhanced code, if any, starts the reply text
    enhanced = match.group(0) if match else None
    message = f"{where + ': ' if where else ''}{stage}: {code} {reply}".rstrip()
    status = status_class(code, enhanced, reply)
    cls: type[DeliveryError]
    if 400 <= code < 500:
        cls = TemporaryFailure
    elif not 500 <= code < 600:  # no success where one was due: a broken server, retry later
        cls = TemporaryFailure
    elif status is StatusClass.HARD and stage == "RCPT TO":
        cls = PermanentFailure
    elif status in _RETRIED and (stage == "RCPT TO" or enhanced is not None):
        cls = TemporaryFailure
    else:
        cls = PolicyRejection
    return cls(message, code=code, enhanced=enhanced)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP Retry-After header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or now_utc())).total_seconds())


def classify_http(
    status: int, detail: str, recipient: str, wait: float | None, where: str
) -> DeliveryError:
    """The exception for a failed HTTP API response (docs/requirements.md S8).

    408, 429 and 5xx → temporary (with Retry-After); 400 naming the recipient → permanent;
    401, 402, 403 and any other 4xx → policy: our key, account or request is at fault, and
    blaming the address would suppress the whole list.
    """
    message = f"{where}: HTTP {status} {' '.join(detail.split())[:300]}".rstrip()
    if status in (408, 429) or status >= 500:
        return TemporaryFailure(message, code=status, retry_after=wait)
    # Brevo answers a bad recipient with 400 {"code":"invalid_parameter","message":"email is
    # not valid in to"}; other 400s are about our request and must not suppress the address.
    # "in to" (the field), not any "to": "unable to parse the body" must not bounce anyone.
    names_recipient = recipient.lower() in detail.lower() or re.search(r"\bin to\b", detail)
    if status == 400 and names_recipient:
        return PermanentFailure(message, code=status)
    return PolicyRejection(message, code=status)
