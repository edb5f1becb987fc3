"""What each alert says: subject and text in the site's language, from the `alerts` catalogs.

The office reads the site's language; the strings live in
`templates/locale/<tag>/LC_MESSAGES/alerts.po` (German and English), apart from the reader
catalogs that every edition must translate. A language without one gets the English text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from comms.core.config import Config
from comms.core.logs import redact
from comms.publish.templating import Formatter, babel_locale, catalog_path, translations

DOMAIN = "alerts"


@dataclass(frozen=True)
class Alert:
    """One alert: its kind, the key that makes it once-only, what it says, and its facts."""

    kind: str
    key: str
    subject: str
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


def _catalog(config: Config) -> NullTranslations:
    language = config.settings.site.language
    if not catalog_path(language, DOMAIN).is_file():
        return NullTranslations()
    found: Translations = translations(language, DOMAIN)
    return found


def _say(config: Config, message: str, **values: Any) -> str:
    return str(_catalog(config).gettext(message)) % values


def _when(config: Config, value: datetime) -> str:
    return Formatter(config).brief(value)


def send_problem(config: Config, slug: str, kind: str, reason: str, due_at: datetime) -> Alert:
    """A scheduled send that was refused by the send rules or failed."""
    when = _when(config, due_at)
    if kind == "refused":
        subject = _say(config, "Scheduled send of %(issue)s refused", issue=slug)
        lead = _say(
            config, "The send of %(issue)s due at %(due)s was refused; nothing was sent.",
            issue=slug, due=when,
        )  # fmt: skip
    else:
        subject = _say(config, "Scheduled send of %(issue)s failed", issue=slug)
        lead = _say(config, "The send of %(issue)s due at %(due)s failed.", issue=slug, due=when)
    because = _say(config, "Reason: %(reason)s", reason=reason)
    text = f"{lead}\n\n{because}\n"
    key = f"send-{kind}:{slug}:{due_at.isoformat()}"
    facts = {"issue": slug, "reason": reason, "due_at": due_at.isoformat()}
    return Alert(f"send-{kind}", key, subject, text, facts)


def send_finished(
    config: Config, slug: str, campaign_id: int, counts: dict[str, int], bounces: dict[str, int]
) -> Alert:
    """A campaign in which every delivery is final: its summary."""
    values = {
        "issue": slug,
        "sent": counts.get("sent", 0),
        "failed": counts.get("failed", 0),
        "skipped": counts.get("skipped", 0),
        "hard": bounces.get("hard", 0),
        "complaints": bounces.get("complaint", 0),
    }
    subject = _say(config, "Send of %(issue)s finished", issue=slug)
    text = _say(
        config,
        "The send of %(issue)s is finished: %(sent)s sent, %(failed)s failed, %(skipped)s "
        "skipped; %(hard)s hard bounces, %(complaints)s complaints so far.",
        **values,
    )
    return Alert("send-finished", f"send-finished:{campaign_id}", subject, text + "\n", values)


def stalled(config: Config, slug: str, campaign_id: int, since: datetime, due: int) -> Alert:
    """A campaign with due deliveries that have not moved for `schedule.stall_minutes`."""
    values = {"issue": slug, "since": _when(config, since), "due": due}
    subject = _say(config, "Send of %(issue)s stalls", issue=slug)
    text = _say(
        config,
        "No delivery of %(issue)s has moved since %(since)s; %(due)s deliveries are due. "
        "`comms status %(issue)s` says why.",
        **values,
    )
    key = f"stalled:{campaign_id}:{since.isoformat()}"
    return Alert("stalled", key, subject, text + "\n", values)


def rate_exceeded(
    config: Config, slug: str, campaign_id: int, kind: str, rate: float, limit: float
) -> Alert:
    """A hard bounce (`kind` bounce) or complaint (`complaint`) rate above its threshold."""
    locale = babel_locale(config.settings.site.language)
    values = {
        "issue": slug,
        "rate": f"{format_decimal(rate, '0.##', locale=locale)}\u00a0%",
        "limit": f"{format_decimal(limit, '0.##', locale=locale)}\u00a0%",
    }
    if kind == "bounce":
        subject = _say(config, "Hard bounce rate of %(issue)s too high", **values)
        text = _say(
            config,
            "%(rate)s of the deliveries of %(issue)s bounced hard (threshold %(limit)s). "
            "Check the list before the next send.",
            **values,
        )
    else:
        subject = _say(config, "Complaint rate of %(issue)s too high", **values)
        text = _say(
            config,
            "%(rate)s of the recipients of %(issue)s reported it as spam (threshold "
            "%(limit)s). Check who receives it and why.",
            **values,
        )
    return Alert(f"{kind}-rate", f"{kind}-rate:{campaign_id}", subject, text + "\n", values)


def database_unreachable(config: Config, where: str, error: str, since: datetime) -> Alert:
    """A process cannot reach the database (raised from a retry loop)."""
    # The first line only, with tokens, addresses and secrets masked as in the log.
    error = redact(error.strip().splitlines()[0] if error.strip() else "", config.secret_values())
    subject = _say(config, "Database unreachable")
    text = _say(
        config,
        "%(where)s cannot reach the database since %(since)s: %(error)s",
        where=where, since=_when(config, since), error=error,
    )  # fmt: skip
    facts = {"where": where, "error": error}
    return Alert("database-unreachable", f"database:{where}:{since.isoformat()}", subject,
                 text + "\n", facts)  # fmt: skip


def lease_lost(config: Config, owner: str, acquired_at: datetime) -> Alert:
    """The scheduler of `owner` lost its lease to another process and stopped."""
    subject = _say(config, "Scheduler lease lost")
    text = _say(
        config,
        "The scheduler in %(owner)s lost its lease to another process and stopped; another "
        "`comms serve` runs the scheduled sends now, or none does: check `comms schedule`.",
        owner=owner,
    )
    key = f"lease-lost:{owner}:{acquired_at.isoformat()}"
    return Alert("lease-lost", key, subject, text + "\n", {"owner": owner})
