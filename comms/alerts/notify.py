"""Sending alerts: each once (its key recorded in the database), by mail to `alerts.to`
through the configured transport and as JSON to `alerts.webhook`."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import requests
from sqlalchemy.engine import Engine

from comms.alerts import texts
from comms.alerts.texts import Alert
from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.db.incidents import first_alert, forget_alert
from comms.mail.message import POLICY, needs_smtputf8, sendable_address
from comms.mail.transports import open_transport

log = logging.getLogger("comms.alerts")

#: Seconds a webhook may take to answer.
WEBHOOK_TIMEOUT = 10.0


def alert_message(config: Config, alert: Alert) -> tuple[str, str, bytes]:
    """(envelope sender, recipient, bytes) of an alert mail: plain text from `sender.address`
    to `alerts.to`, no list headers and no unsubscribe link (a message to the office, not to
    the list)."""
    to = config.settings.alerts.to
    assert to is not None
    sender = sendable_address(config.settings.sender.address)
    recipient = sendable_address(to)
    policy = POLICY.clone(utf8=True) if needs_smtputf8(recipient) else POLICY
    msg = EmailMessage(policy=policy)
    local, _, domain = sender.rpartition("@")
    msg["Date"] = format_datetime(now_utc().astimezone(config.tz))
    msg["From"] = Address(f"{config.settings.site.name} (comms)", local, domain)
    msg["To"] = recipient
    msg["Subject"] = alert.subject
    host = config.host.encode("idna").decode("ascii")
    msg["Message-ID"] = f"<alert.{secrets.token_hex(12)}@{host}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["X-Comms-Alert"] = alert.kind
    msg.set_content(alert.text, cte="quoted-printable")
    msg["Content-Language"] = config.settings.site.language
    return sender, recipient, msg.as_bytes(policy=policy)


class Alerter:
    """Sends alerts for one configuration; `engine` records which went out (None: no record,
    every call sends)."""

    def __init__(self, config: Config, engine: Engine | None) -> None:
        self.config, self.engine = config, engine
        self._lock = threading.Lock()
        #: Outages told, by who noticed them (database alarms cannot be recorded in it).
        self._outages: dict[str, datetime] = {}

    @property
    def enabled(self) -> bool:
        """Whether any alert can go anywhere."""
        a = self.config.settings.alerts
        return a.to is not None or a.webhook is not None

    def send(self, alert: Alert, record: bool = True) -> bool:
        """Send `alert` unless its key was sent before (on any host); True if it went out now.
        Never raises: a failure is logged, and the key forgotten so a later check tries again."""
        if not self.enabled:
            return False
        try:
            if record and self.engine is not None:
                if not first_alert(self.engine, alert.key, alert.kind, now_utc()):
                    return False
            delivered = self._mail(alert)
            delivered = self._post(alert) or delivered
            if not delivered and record and self.engine is not None:
                forget_alert(self.engine, alert.key)
        except Exception as exc:  # an alert must never break the job that raised it
            log.error("alert %s not sent: %s", alert.key, exc)
            return False
        if delivered:
            log.info("alert sent: %s", alert.subject)
        return delivered

    def _mail(self, alert: Alert) -> bool:
        if self.config.settings.alerts.to is None:
            return False
        sender, recipient, data = alert_message(self.config, alert)
        try:
            transport = open_transport(self.config.transport_url, self.config)
            try:
                transport.send(sender, recipient, data, alert.key)
            finally:
                transport.close()
        except (CommsError, OSError) as exc:
            log.error("alert mail %s not sent: %s", alert.key, exc)
            return False
        return True

    def _post(self, alert: Alert) -> bool:
        url = self.config.settings.alerts.webhook
        if url is None:
            return False
        body = {
            "kind": alert.kind,
            "key": alert.key,
            "subject": alert.subject,
            "text": alert.text,
            "facts": alert.facts,
            "at": now_utc().isoformat(),
        }
        try:
            answer = requests.post(url, json=body, timeout=WEBHOOK_TIMEOUT)
            answer.raise_for_status()
        except requests.RequestException as exc:
            # The URL carries a credential: name the alert, not the address.
            log.error("alert webhook for %s failed: %s", alert.key, type(exc).__name__)
            return False
        return True

    # -- the database alarms of comms.core.alarm -------------------------------------------

    def database_unreachable(self, where: str, error: str) -> None:
        """Tell the first report of an outage per `where`; later ones until it ends are quiet."""
        with self._lock:
            if where in self._outages:
                return
            since = self._outages[where] = now_utc()
        self.send(texts.database_unreachable(self.config, where, error, since), record=False)

    def database_reachable(self, where: str) -> None:
        """The outage `where` noticed is over: the next one is told again."""
        with self._lock:
            self._outages.pop(where, None)
