"""The desk's sending pages: send now or schedule (each confirmed on a second page, as
`comms send` asks), a campaign's progress, the held and refused scheduled sends, and the
reports of an issue and of the audience. The decisions are the services' (comms.sending.
desk_sending_office, comms.reports); these views only parse forms and render."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
from typing import Any

from flask import Response, request

from comms.content.fields import parse_when
from comms.content.models import N_
from comms.core.clock import now_utc
from comms.core.errors import CommsError
from comms.core.languages import site_editions
from comms.db.desk_accounts import Account
from comms.reports.audience_report import audience_report
from comms.reports.charts import Chart, audience_charts, issue_charts
from comms.reports.clicks import Clicks
from comms.reports.issue_report import issue_report
from comms.sending.approval import selection, short
from comms.sending.desk_sending_office import START_WAIT, SendingDesk
from comms.sending.rules import NotSendable
from comms.web.desk_kit import DESK_FORM, DeskKit
from comms.web.guard import acting

#: How often a status page of a running send reloads itself (seconds; no script needed).
REFRESH_SECONDS = 5
#: What a redirect to the overview may report (never text from the request).
DONE = {"schedule"}
#: A campaign's status in words (the values of comms.db.status.CampaignStatus).
CAMPAIGN_WORDS = {
    "sending": N_("being sent"),
    "waiting": N_("waiting for retries"),
    "paused": N_("paused, waits for a person"),
    "done": N_("finished"),
}
#: A subscriber's status in words (the values of comms.db.status.SubscriberStatus).
SUBSCRIBER_WORDS = {
    "active": N_("Subscribers who are active"),
    "pending": N_("Subscribers waiting for their confirmation"),
    "unsubscribed": N_("Subscribers who unsubscribed"),
    "bounced": N_("Subscribers whose address bounced"),
    "complained": N_("Subscribers who complained"),
}


def chart_source(chart: Chart) -> str:
    """A chart as a `data:` URL for an <img> (the desk's CSP allows those, and an image can
    run no script)."""
    return "data:image/svg+xml;base64," + base64.b64encode(chart.svg().encode()).decode()


def add_sending_pages(kit: DeskKit) -> None:
    """Add the sending pages to the desk's blueprint."""
    sending = SendingDesk(kit.office)
    config = kit.config
    desk, see_other, needs, _ = kit.blueprint, kit.see_other, kit.needs, kit.text

    def page(name: str, status: int = 200, **context: Any) -> Response:
        """A desk page that can word campaign and subscriber statuses."""
        return kit.page(
            name, status,
            campaign_status=lambda value: _(CAMPAIGN_WORDS.get(str(value), str(value))),
            subscriber_status=lambda value: _(SUBSCRIBER_WORDS.get(str(value), str(value))),
            **context,
        )  # fmt: skip

    labels = {edition.language: edition.label for edition in site_editions(config).all}
    engine = kit.office.store.engine

    def refused(slug: str, status: int, reason: str, hint: str | None = None) -> Response:
        return page("send_confirm.html.j2", status, slug=slug, confirm=None, error=reason,
                    hint=hint or "", action="")  # fmt: skip

    def moment() -> datetime:
        """The date and time of the schedule form, in the site's time zone."""
        day, clock = request.form.get("date", "")[:20], request.form.get("time", "")[:20]
        try:
            found = parse_when(f"{day} {clock}", config.tz, allow_date=False)
        except ValueError as exc:
            raise CommsError(_("Date and time are not valid:") + f" {exc}") from None
        assert isinstance(found, datetime)
        return found

    def confirm_page(account: Account, slug: str, action: str) -> Response:
        try:
            at = moment() if action == "schedule" else None
            confirm = sending.confirmation(slug, account, at)
        except NotSendable as exc:
            return refused(slug, 409, str(exc), exc.hint)
        except CommsError as exc:
            return refused(slug, 409, str(exc))
        return page(
            "send_confirm.html.j2",
            slug=slug,
            confirm=confirm,
            action=action,
            error="",
            hint="",
            fmt=sending.fmt(),
            labels=labels,
            short=short,
            selection=selection(confirm.issue),
            stamp=at.strftime("%Y-%m-%d %H:%M") if at else "",
        )

    @desk.route("/issues/<slug>/send", methods=["POST"])
    @acting(DESK_FORM)
    @needs("approver")
    def send_ask(account: Account, slug: str) -> Response:
        return confirm_page(account, slug, "send")

    @desk.route("/issues/<slug>/schedule", methods=["POST"])
    @acting(DESK_FORM)
    @needs("approver")
    def schedule_ask(account: Account, slug: str) -> Response:
        return confirm_page(account, slug, "schedule")

    @desk.route("/issues/<slug>/send/confirm", methods=["POST"])
    @acting(DESK_FORM)
    @needs("approver")
    def send_confirmed(account: Account, slug: str) -> Response:
        try:
            sending.send_now(slug, account, request.form.get("version", "")[:64])
        except NotSendable as exc:
            return refused(slug, 409, str(exc), exc.hint)
        except CommsError as exc:
            return refused(slug, 409, str(exc))
        return see_other(f"/sends/{slug}/")

    @desk.route("/issues/<slug>/schedule/confirm", methods=["POST"])
    @acting(DESK_FORM)
    @needs("approver")
    def schedule_confirmed(account: Account, slug: str) -> Response:
        try:
            at = moment()
            sending.schedule(slug, account, request.form.get("version", "")[:64], at)
        except NotSendable as exc:
            return refused(slug, 409, str(exc), exc.hint)
        except CommsError as exc:
            return refused(slug, 409, str(exc))
        return see_other("/sends/?done=schedule")

    @desk.route("/sends/", methods=["GET", "HEAD"])
    @needs("editor")
    def sends(account: Account) -> Response:
        done = request.args.get("done", "")
        return page(
            "sends.html.j2",
            overview=sending.overview(),
            fmt=sending.fmt(),
            done=done if done in DONE else "",
        )

    @desk.route("/sends/<slug>/", methods=["GET", "HEAD"])
    @needs("editor")
    def send_state(account: Account, slug: str) -> Response:
        state = sending.state(slug)
        starting = state is None and sending.starting(slug)
        live = starting or (state is not None and state.sending)
        # Reloading is on while the send goes on, unless the reader turned it off (WCAG
        # 2.2.1): a Refresh header, so the page needs no script. Before a send starts it is
        # the reader's choice: the scheduler (any host) may start it at any moment.
        waiting = state is None and not starting
        asked = request.args.get("follow")
        follow = (live and asked != "0") or (waiting and asked == "1")
        response = page(
            "send_status.html.j2",
            slug=slug,
            state=state,
            starting=starting,
            follow=follow,
            live=live or waiting,
            refresh=REFRESH_SECONDS,
            labels=labels,
            fmt=sending.fmt(),
            wait=int(START_WAIT),
        )
        if follow:
            response.headers["Refresh"] = str(REFRESH_SECONDS)
        return response

    @desk.route("/issues/<slug>/report", methods=["GET", "HEAD"])
    @needs("editor")
    def report(account: Account, slug: str) -> Response:
        store = kit.office.store
        try:
            found = issue_report(engine, slug, Clicks(config, engine, store.secret))
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        charts = issue_charts(config, found)
        return page(
            "report.html.j2",
            slug=slug,
            data=found.to_json(),
            charts=[(chart, chart_source(chart)) for chart in charts],
            fmt=sending.fmt(),
            labels=labels,
        )

    @desk.route("/report/audience", methods=["GET", "HEAD"])
    @needs("editor")
    def audience(account: Account) -> Response:
        try:
            last = _day(request.args.get("to", "")) or now_utc().date()
            first = _day(request.args.get("from", "")) or last - timedelta(days=364)
        except ValueError:
            return page("message.html.j2", 400, message=_("Date and time are not valid:"))
        if last < first:
            first, last = last, first
        try:
            found = audience_report(engine, first, last)
        except ValueError as exc:
            return page("message.html.j2", 400, message=str(exc))
        charts = audience_charts(config, found)
        return page(
            "audience.html.j2",
            first=first,
            last=last,
            data=found.to_json(),
            charts=[(chart, chart_source(chart)) for chart in charts],
            fmt=sending.fmt(),
        )


def _day(value: str) -> date | None:
    """A day from a date field (`YYYY-MM-DD`), None when empty; ValueError when not a day."""
    value = value.strip()[:10]
    return date.fromisoformat(value) if value else None
