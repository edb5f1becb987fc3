"""The subscriber pages: sign-up, confirmation, unsubscribe (RFC 8058), preferences; in the
configured languages (`?lang=`, else the person's), no JavaScript, thin over
comms.audience.subscriptions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from comms.audience.limits import signup_limits
from comms.audience.subscriptions import SignUp, Status, Subscriptions, Visitor
from comms.content import urls
from comms.core.config import Config
from comms.core.errors import BadToken, ExpiredToken
from comms.core.languages import site_editions
from comms.core.names import clean_name
from comms.db.people import Subscriber, normalise_address
from comms.web.guard import CsrfGuard
from comms.web.notices import (
    Button,
    _,
    bad_link,
    language_choices,
    notice,
    page,
    page_language,
    site_root,
)
from comms.web.preferences import add_preference_routes


def _visitor() -> Visitor:
    config: Config = current_app.config["COMMS_CONFIG"]
    # The public URL of the page, with the route's pattern: no token lands in the ledger.
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return Visitor(
        source=config.url(rule),
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )


def _too_many(wait: float) -> Response:
    response = notice(
        _("Too many requests"),
        _("Too many sign-ups came from your connection. Please try again in a few minutes."),
        status=429,
    )
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


def _expired(token: str) -> Response:
    return notice(
        _("This confirmation link has expired"),
        _("For your protection a confirmation link only works for a limited time."),
        _("We can send you a new confirmation e-mail."),
        button=Button(
            f"{site_root()}{urls.confirm_path(token)}/resend", _("Send a new confirmation e-mail")
        ),
        links=[(_("Subscribe again"), site_root() + urls.SUBSCRIBE)],
    )


def _cross_site(config: Config) -> bool:
    """True when a browser says this POST comes from another site's page (OWASP: verify the
    origin with standard headers). Non-browser clients send neither header and may sign up
    without the form's token: the double opt-in mail is what proves the address."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return origin == "null"
    ours = {urlsplit(request.host_url).netloc, urlsplit(config.settings.site.base_url).netloc}
    return urlsplit(origin).netloc not in ours


def _signup_form(
    subs: Subscriptions, guard: CsrfGuard, status: int = 200, error: str = "", **form: Any
) -> Response:
    config = subs.config
    settings = config.settings
    here = page_language()
    values = {"email": "", "name": "", "topics": [], "regions": [], "language": here, **form}
    switch = [
        (edition.language, edition.label, urls.Urls(config).absolute(urls.subscribe_path(edition)))
        for edition in site_editions(config).all
    ]
    return page(
        "subscribe.html.j2",
        status,
        form=values,
        languages=language_choices(config),
        alternates=switch if len(switch) > 1 else [],
        error=error,
        csrf_token=guard.issue("subscribe"),
        topics=settings.topics,
        regions=settings.regions,
        consent_text=settings.subscribe.consent_text,
    )


def _subscribe_routes(app: Flask, subs: Subscriptions, guard: CsrfGuard) -> None:
    limit = subs.config.settings.subscribe
    # Counted in the database: every server process behind a load balancer sees each hit.
    # Against bombing one address from many IPs: a few mails per address and hour, then the
    # same answer without a mail (a 429 here would tell that the address was asked for).
    limiter, per_address = signup_limits(subs.store, limit.rate_limit, limit.rate_window)

    @app.get("/subscribe")
    def subscribe_form() -> Response:
        return _signup_form(subs, guard)

    @app.post("/subscribe")
    def subscribe() -> Response:
        form = request.form
        address = form.get("email", "")[:320]
        name = clean_name(form.get("name", ""))
        topics = tuple(form.getlist("topics")[:50])
        regions = tuple(form.getlist("regions")[:50])
        language = form.get("language", "")[:16] or page_language()
        values = {
            "email": address,
            "name": name,
            "topics": topics,
            "regions": regions,
            "language": language,
        }
        if not guard.check("subscribe", form.get("csrf_token")) and _cross_site(subs.config):
            error = _("The form was open too long or is incomplete. Please submit it again.")
            return _signup_form(subs, guard, 400, error, **values)
        wait = limiter.hit(request.remote_addr or "-")
        if wait:
            return _too_many(wait)
        try:
            email = normalise_address(address)
        except ValueError:
            error = _("Please enter a valid e-mail address, e.g. name@example.org.")
            return _signup_form(subs, guard, 400, error, **values)
        # The honeypot: people leave `website` empty, bots fill it.
        if not form.get("website") and not per_address.hit(email):
            subs.request_later(SignUp(email, name or None, topics, regions, language), _visitor())
        # The same answer, after the same work, for new, known and suppressed addresses
        # (docs/requirements.md L15): the request is decided in the background.
        return notice(
            _("Please confirm your subscription"),
            _("We have sent an e-mail to the address you entered. Please click the link in it."),
            _(
                "Only after your confirmation do you receive the newsletter. If the e-mail does "
                "not arrive within a few minutes, please look in your spam folder."
            ),
        )

    @app.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str) -> Response:
        try:
            person = subs.pending(token)
            if person is None:
                return bad_link()
            g.language = person.language
            if request.method == "GET":  # link scanners only GET: a button confirms
                if person.status == Status.ACTIVE:
                    return _confirmed(person, again=True)
                return notice(
                    _("Confirm your subscription"),
                    _("Please confirm with the button that you want to receive the newsletter."),
                    button=Button(
                        site_root() + urls.confirm_path(token), _("Confirm subscription")
                    ),
                )
            changed = subs.confirm(token, _visitor())
        except ExpiredToken:
            return _expired(token)
        except BadToken:
            return bad_link()
        return _confirmed(subs.store.by_uid(person.uid) or person, again=not changed)

    @app.post("/confirm/<token>/resend")
    def resend(token: str) -> Response:
        wait = limiter.hit(request.remote_addr or "-")
        if wait:
            return _too_many(wait)
        subs.resend(token)
        return notice(
            _("Please confirm your subscription"),
            _(
                "If your sign-up is still waiting for confirmation, we have sent you a new "
                "e-mail. Please click the link in it."
            ),
            links=[(_("Subscribe again"), site_root() + urls.SUBSCRIBE)],
        )


def _confirmed(person: Subscriber, again: bool) -> Response:
    # No link to the settings: it would turn a confirmation link that expires into a
    # permanent one; the settings link is in every newsletter.
    if person.status != Status.ACTIVE:
        return notice(
            _("This link has already been used"),
            _("Please subscribe again if you want to receive the newsletter."),
            links=[(_("Subscribe to the newsletter"), site_root() + urls.SUBSCRIBE)],
        )
    heading = _("Your subscription is already confirmed") if again else _("Thank you!")
    return notice(
        heading,
        _("Your subscription is confirmed. You will receive the next issue of the newsletter."),
        _(
            "You can change your settings or unsubscribe at any time with the links at the "
            "end of every newsletter."
        ),
    )


def _unsubscribe_routes(app: Flask, subs: Subscriptions) -> None:
    @app.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str) -> Response:
        # No CSRF token, no cookie: mailbox providers POST here (RFC 8058); the signed token
        # in the URL is the proof. Always 200, never a redirect (docs/requirements.md E7).
        # No link to the settings page here: mailbox providers are given this URL, and it
        # must not lead to the person's data.
        try:
            subs.profile_for_unsubscribe(token)  # BadToken for a forged link
            if request.method == "POST":
                one_click = request.form.get("List-Unsubscribe") == "One-Click"
                subs.unsubscribe(token, "one-click" if one_click else "link", _visitor())
                return notice(
                    _("You have been unsubscribed"),
                    _(
                        "You will receive no more newsletters from us. We will not send a "
                        "confirmation of this either."
                    ),
                    _("Changed your mind? You can subscribe again at any time."),
                    links=[(_("Subscribe to the newsletter"), site_root() + urls.SUBSCRIBE)],
                )
        except BadToken:
            return bad_link()
        return notice(
            _("Unsubscribe from the newsletter"),
            _("Do you want to stop receiving the newsletter? Please confirm with the button."),
            button=Button(site_root() + urls.unsubscribe_path(token), _("Unsubscribe")),
        )


def add_subscriber_routes(app: Flask, subs: Subscriptions) -> None:
    """Sign-up, confirmation, unsubscribe, preferences and /healthz, with German pages."""
    app.config["COMMS_CONFIG"] = subs.config
    guard = CsrfGuard(subs.secret)
    _subscribe_routes(app, subs, guard)
    _unsubscribe_routes(app, subs)
    add_preference_routes(app, subs, guard)

    @app.get("/healthz")
    def healthz() -> Response:
        ok, body = subs.health()
        return Response(json.dumps(body), 200 if ok else 503, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        headers = exc.get_response().headers
        response = notice(
            f"{code} – {_error_title(code)}",
            _("Please check the address or go to the start page."),
            status=code,
            links=[(_("Start page"), site_root())],
        )
        if "Allow" in headers:
            response.headers["Allow"] = headers["Allow"]
        return response


def _error_title(code: int) -> str:
    titles = {
        400: _("Bad request"),
        404: _("Page not found"),
        405: _("Method not allowed"),
        413: _("Request too large"),
    }
    return titles.get(code, _("Error"))
