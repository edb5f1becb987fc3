"""Classify SMTP replies and HTTP API responses as temporary, permanent or policy failures."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from comms.core.clock import now_utc
from comms.core.errors import DeliveryError, PermanentFailure, PolicyRejection, TemporaryFailure

_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")


# Reply texts that are about our pace or volume, not about one recipient: Postfix's "too many
# connections/messages", Exim's "rate limit exceeded", Microsoft's "throttled", "slow down".
_SLOW_DOWN_TEXT = re.compile(
    r"too many (?:connections|concurrent|sessions|messages|mails|e-?mails)|too fast"
    r"|slow(?:ing)? down|rate[- ]?limit|throttl|sending rate|(?:rate|limit) (?:is )?exceeded"
    r"|unusual rate",
    re.IGNORECASE,
)


def asks_to_slow_down(error: DeliveryError) -> bool:
    """Whether a temporary failure concerns the sender's pace rather than one recipient.

    421 at any stage (the server closes the session: busy, too many connections), HTTP 429,
    Gmail's 4.7.28 (unusual rate), or a reply that asks to slow down or reports too many
    connections or messages. A greylisting `451 4.7.1 try again later` at RCPT and other
    per-recipient deferrals (a full mailbox, 4.2.x, 4.4.x) are not: they are retried later
    without slowing the others down.
    """
    if error.code in (421, 429) or error.enhanced == "4.7.28":
        return True
    return error.code is not None and bool(_SLOW_DOWN_TEXT.search(str(error)))


def _names_address(code: int, enhanced: str | None) -> bool:
    """A refusal of the recipient address itself: 5.1.x (address), 5.2.x (mailbox), or
    without an enhanced code 550/551/553 (RFC 5321 §4.2.3)."""
    if enhanced is not None:
        return enhanced.startswith(("5.1.", "5.2."))
    return code in (550, 551, 553)


def classify(code: int, text: bytes | str, stage: str, where: str = "") -> DeliveryError:
    """The exception for a failed SMTP reply (docs/requirements.md S5).

    4xx → temporary; 552 to RCPT or 5.5.3 ("too many recipients") → temporary; a refusal of
    the address at RCPT (5.1.x, 5.2.x, or 550/551/553 without an enhanced code) → permanent
    (a bounce). Every other 5xx is about our message or session (content or size at the end
    of DATA, 5.3.x, 5.5.x, 5.7.x, 500-504, 535, anything before RCPT) → policy: stop the
    campaign and blame no address.
    """
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    reply = " ".join(reply.split())
    match = _ENHANCED.match(reply)
    enhanced = match.group(1) if match else None
    message = f"{where + ': ' if where else ''}{stage}: {code} {reply}".rstrip()
    cls: type[DeliveryError]
    if 400 <= code < 500:
        cls = TemporaryFailure
    elif enhanced == "5.5.3" or (code == 552 and stage == "RCPT TO"):
        cls = TemporaryFailure  # RFC 5321 §4.5.3.1.10: too many recipients is not final
    elif 500 <= code < 600 and stage == "RCPT TO" and _names_address(code, enhanced):
        cls = PermanentFailure
    elif 500 <= code < 600:
        cls = PolicyRejection
    else:  # a reply outside 4xx/5xx where a success was due: a broken server, retry later
        cls = TemporaryFailure
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
