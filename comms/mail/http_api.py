"""The HTTP e-mail API transport: Brevo's transactional API (EU-hosted) through requests.

Brevo takes JSON, not MIME, so the finished message is parsed back into sender, recipient,
subject, both bodies and the list headers. That costs about a millisecond, far less than the
HTTP round trip it precedes. Retries of one message reuse one idempotency key (a UUID derived
from the delivery key), both as the `Idempotency-Key` HTTP header and as Brevo's
`headers.idempotencyKey`, so a retried POST is processed once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from comms.core.errors import DeliveryError, PolicyRejection, TemporaryFailure, Unreachable
from comms.mail.replies import classify_http, retry_after

#: Namespace of the idempotency UUIDs: the same delivery key gives the same UUID everywhere.
KEY_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-5b7a-9c4e-2a61d3f0b8e7")
#: Headers of the finished message that travel as Brevo custom headers.
PASSED_HEADERS = ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID")


def idempotency_key(key: str) -> str:
    """The UUID Brevo wants as idempotency key, derived from the delivery key."""
    return str(uuid.uuid5(KEY_NAMESPACE, key))


def _mailbox(header: Any) -> dict[str, str]:
    address = header.addresses[0]
    box = {"email": address.addr_spec}
    if address.display_name:
        box["name"] = address.display_name
    return box


def payload(data: bytes, recipient: str, key: str) -> dict[str, Any]:
    """The JSON body of `POST /v3/smtp/email` for one finished MIME message."""
    msg = BytesParser(policy=default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    body: dict[str, Any] = {
        "sender": _mailbox(msg["From"]),
        "to": [{**_mailbox(msg["To"]), "email": recipient}],
        "subject": str(msg["Subject"]),
        "headers": {"idempotencyKey": idempotency_key(key)},
    }
    if msg["Reply-To"] is not None:
        body["replyTo"] = _mailbox(msg["Reply-To"])
    for name in PASSED_HEADERS:
        if msg[name] is not None:
            body["headers"][name] = str(msg[name])
    fields = {"text/plain": "textContent", "text/html": "htmlContent"}
    for part in msg.walk():
        field = fields.get(part.get_content_type())
        if field is not None:  # the wire's CRLF line ends back to the rendered "\n"
            body[field] = part.get_content().replace("\r\n", "\n")
    return body


class HttpApiTransport:
    """Posts each message to the API; retries 429/5xx with the same idempotency key."""

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 3,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`endpoint` is the full URL of the send call; waits longer than max_wait give up."""
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers.update({"api-key": api_key, "Accept": "application/json"})

    def _attempt(self, body: dict[str, Any], recipient: str, idem: str) -> DeliveryError | None:
        try:
            response = self.session.post(
                self.endpoint, json=body, headers={"Idempotency-Key": idem}, timeout=self.timeout
            )
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            if isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError):
                return Unreachable(f"{self.endpoint}: cannot connect: {exc}")
            # The connection broke after the request went out: it may have been processed.
            return TemporaryFailure(f"{self.endpoint}: connection lost: {exc}", ambiguous=True)
        except requests.Timeout as exc:
            # The request may have arrived: only the idempotency key keeps a retry single.
            return TemporaryFailure(f"{self.endpoint}: no answer: {exc}", ambiguous=True)
        except requests.RequestException as exc:
            return PolicyRejection(f"{self.endpoint}: request failed: {exc}")
        if 200 <= response.status_code < 300:
            return None
        wait = retry_after(response.headers.get("Retry-After"))
        return classify_http(response.status_code, response.text, recipient, wait, self.endpoint)

    def send(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        key: str,
        gate: Callable[[], None] | None = None,
        wire: bytes | None = None,
        then: Callable[[DeliveryError | None], None] | None = None,
    ) -> bool:
        """One logical send: up to `max_attempts` POSTs carrying the same idempotency key
        (`gate` is called before the first); the result is known when it returns."""
        if gate is not None:
            gate()
        idem = idempotency_key(key)
        body = payload(data, recipient, key)
        ambiguous = False
        for attempt in range(1, self.max_attempts + 1):
            error = self._attempt(body, recipient, idem)
            if error is None:
                return False
            ambiguous = ambiguous or error.ambiguous
            error.ambiguous = ambiguous
            if not isinstance(error, TemporaryFailure) or attempt == self.max_attempts:
                raise error
            wait = error.retry_after if error.retry_after is not None else 2.0 ** (attempt - 1)
            if wait > self.max_wait:
                raise error
            self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def flush(self) -> None:
        """Nothing is owed: every result is known when `send` returns."""

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()
