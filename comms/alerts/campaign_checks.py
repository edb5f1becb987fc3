"""The checks the scheduler runs every minute: sends finished, campaigns stalled, bounce and
complaint rates above `[alerts]`'s thresholds. They read the database only, so they see sends
started by any command on any host; each alert goes out once (`Alerter.send`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from comms.alerts import texts
from comms.alerts.notify import Alerter
from comms.alerts.texts import Alert
from comms.db.incidents import Activity, campaign_activity
from comms.db.status import CampaignStatus

#: A finished send older than this when the checks first see it gets no summary (the first
#: start after an upgrade must not announce every campaign of the past).
FINISHED_WITHIN = timedelta(days=1)


def due_alerts(alerter: Alerter, now: datetime) -> list[Alert]:
    """The alerts the campaigns call for at `now` (sent or not)."""
    config = alerter.config
    assert alerter.engine is not None
    stall_minutes = config.settings.schedule.stall_minutes
    found: list[Alert] = []
    for c in campaign_activity(alerter.engine, now, now - FINISHED_WITHIN):
        if c.status == CampaignStatus.DONE:
            found.append(texts.send_finished(config, c.slug, c.id, c.counts, c.feedback))
        # One threshold for "stalled": the one /healthz answers 503 for.
        elif c.due and now - c.last_move >= timedelta(minutes=stall_minutes):
            found.append(texts.stalled(config, c.slug, c.id, c.last_move, c.due))
        found.extend(_rates(alerter, c))
    return found


def _rates(alerter: Alerter, c: Activity) -> list[Alert]:
    """Hard bounces over finished deliveries (refusals at RCPT and give-ups are `failed`; a
    hard bounce report concerns a `sent` one), complaints over sent messages."""
    config = alerter.config
    a = config.settings.alerts
    sent, failed = c.counts.get("sent", 0), c.counts.get("failed", 0)
    if sent + failed < a.min_deliveries:
        return []
    found = []
    bounce = 100 * (failed + c.feedback.get("hard", 0)) / (sent + failed)
    if bounce > a.hard_bounce_percent:
        found.append(
            texts.rate_exceeded(config, c.slug, c.id, "bounce", bounce, a.hard_bounce_percent)
        )
    complaints = 100 * c.feedback.get("complaint", 0) / sent if sent else 0.0
    if complaints > a.complaint_percent:
        found.append(
            texts.rate_exceeded(config, c.slug, c.id, "complaint", complaints, a.complaint_percent)
        )
    return found


def check_campaigns(alerter: Alerter, now: datetime) -> int:
    """Send what the campaigns call for; the number of alerts sent now."""
    if not alerter.enabled:
        return 0
    return sum(alerter.send(alert) for alert in due_alerts(alerter, now))
