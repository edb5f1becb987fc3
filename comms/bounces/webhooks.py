"""Brevo's webhook events (bounces, complaints, unsubscribes) under the same policy as the mailbox.

Brevo signs nothing; it sends a configured `Authorization` header (token) or HTTP Basic
credentials. The endpoint takes either, compared in constant time with the secret from
`COMMS_BOUNCES_WEBHOOK_SECRET`, and refuses every request when that is not set. Brevo's
transactional events carry no event id of their own (`id` is the webhook's), so an event is
known again by its type, message id, address and time: a redelivered event changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from comms.bounces.policy import Outcome, apply
from comms.core.config import Config
from comms.db.feedback import BounceEvent, Feedback
from comms.db.people import normalise_address
from comms.db.store import Store

log = logging.getLogger("comms.bounces")

SOURCE = "webhook brevo"
#: Brevo event names (transactional and marketing spellings) → the policy's kinds.
BREVO_KINDS = {
    "hard_bounce": "hard",
    "hardBounce": "hard",
    "invalid_email": "hard",
    "invalid": "hard",
    "soft_bounce": "soft",
    "softBounce": "soft",
    "spam": "complaint",
    "complaint": "complaint",
    "unsubscribed": "unsubscribe",
    "unsubscribe": "unsubscribe",
}


@dataclass(frozen=True)
class WebhookAnswer:
    """The HTTP status and JSON body to answer with."""

    status: int
    body: dict[str, Any]


def authorised(header: str | None, secret: str | None, user: str = "brevo") -> bool:
    """Does an `Authorization` header match: a Bearer token, or Basic with `user` and the
    secret as password (both compared in constant time)?"""
    if not secret or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            given_user, _, value = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        same_user = hmac.compare_digest(given_user.encode(), user.encode())
        return hmac.compare_digest(value.encode(), secret.encode()) and same_user
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.encode(), secret.encode())


def _key(event: dict[str, Any]) -> str:
    """The idempotency key of one event: its own id when it has one, else what identifies it."""
    own = event.get("uuid") or event.get("event_id")
    if own:
        return f"brevo:{own}"[:200]
    parts = [
        str(event.get(name, ""))
        for name in ("event", "message-id", "messageId", "email", "ts_event", "ts_epoch", "ts")
    ]
    return "brevo:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


class BrevoWebhook:
    """`POST /webhooks/brevo`: authenticate, then act on each event like on a mailbox report."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.secret = config.settings.bounces.webhook_secret

    @property
    def enabled(self) -> bool:
        """Only with a secret: an open endpoint would let anyone unsubscribe anyone."""
        return bool(self.secret)

    def handle(self, authorization: str | None, body: bytes) -> WebhookAnswer:
        """Answer one request (401 without valid credentials, 400 for a body that is no event)."""
        if not authorised(authorization, self.secret, self.config.settings.bounces.webhook_user):
            log.warning("%s: request without valid credentials refused", SOURCE)
            return WebhookAnswer(401, {"error": "unauthorised"})
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return WebhookAnswer(400, {"error": "the body is not JSON"})
        except RecursionError:  # e.g. 30,000 `[`: no event is nested like that
            return WebhookAnswer(400, {"error": "the body is nested too deeply"})
        events = payload if isinstance(payload, list) else [payload]
        if not events or not all(isinstance(e, dict) for e in events):
            return WebhookAnswer(400, {"error": "expected an event object or a list of them"})
        outcomes = [str(self._event(event)) for event in events]
        return WebhookAnswer(200, {"outcomes": outcomes})

    def _event(self, event: dict[str, Any]) -> Outcome:
        kind = BREVO_KINDS.get(str(event.get("event", "")))
        if kind is None:
            return Outcome.IGNORED  # delivered, opened, deferred …: nothing to do
        try:
            email = normalise_address(str(event.get("email", "")))
        except ValueError:
            log.warning("%s: %s event without a usable address: ignored", SOURCE, kind)
            return Outcome.UNKNOWN
        target = Feedback(self.store.engine).by_email(email)
        if target is None:
            log.warning("%s: %s event for an address we do not know: ignored", SOURCE, kind)
            return Outcome.UNKNOWN
        reason = event.get("reason")
        record = BounceEvent(
            key=_key(event),
            kind=kind,
            source="brevo",
            status=None,
            diagnostic=str(reason)[:1000] if reason else f"Brevo event {event.get('event')}",
            delivery_id=target.delivery_id,
            campaign_id=target.campaign_id,
        )
        return apply(self.config, self.store, target, record, SOURCE, "webhook")
