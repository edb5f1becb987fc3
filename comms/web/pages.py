"""The subscriber pages: sign-up, confirmation, unsubscribe (RFC 8058), preferences; in the
configured languages (`?lang=`, else the person's), no JavaScript, thin over
comms.audience.subscriptions."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from comms.audience.limits import Unavailable, client_limit
from comms.audience.subscriptions import SignUp, Status, Subscriptions, Visitor
from comms.content import urls
from comms.core.config import Config
from comms.core.errors import BadToken, ExpiredToken
from comms.core.languages import site_editions
from comms.core.names import clean_name
from comms.db.people import Subscriber, normalise_address
from comms.web.guard import (
    CsrfGuard,
    acting,
    cross_site,
    opaque_origin,
    proof_in_url,
    same_site,
)
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


#: How long a visitor is asked to wait while the database does not answer (seconds).
RETRY_AFTER_OUTAGE = 60


def _outage_text() -> str:
    """What a visitor reads while the database does not answer (in the page's language)."""
    return _(
        "We cannot store your sign-up right now, so nothing was saved. Please try again in a "
        "minute: your details are still filled in."
    )


def _try_again(response: Response) -> Response:
    """A 503 page with `Retry-After`: the database does not answer."""
    response.headers["Retry-After"] = str(RETRY_AFTER_OUTAGE)
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


def _form_values() -> dict[str, Any]:
    """The sign-up form's fields as posted, trimmed to sane sizes."""
    form = request.form
    return {
        "email": form.get("email", "")[:320],
        "name": clean_name(form.get("name", "")),
        "topics": tuple(form.getlist("topics")[:50]),
        "regions": tuple(form.getlist("regions")[:50]),
        "language": form.get("language", "")[:16] or page_language(),
    }


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
    # Against bombing one mailbox from many clients, the background work counts mails per
    # mailbox (Subscriptions.mail_limit) and then sends none: the same answer, as a 429 here
    # would tell that the address was asked for.
    limiter = client_limit(subs.store, limit.rate_limit, limit.rate_window)

    @app.get("/subscribe")
    def subscribe_form() -> Response:
        return _signup_form(subs, guard)

    def refuse_cross_site() -> Response | None:
        # Decision kept: a cookieless form token cannot stop CSRF, and a token a server
        # fetched works from any browser; so a browser's cross-site POST is refused whatever
        # it carries, with our form filled in again. Scripts send no Origin and may sign up
        # without the token: the double opt-in mail proves the address.
        token_ok = guard.check("subscribe", request.form.get("csrf_token"))
        if not cross_site() and (token_ok or not opaque_origin()):
            return None
        error = _(
            "Your browser sent this form from another website. Please check your details "
            "and submit the form here again."
        )
        return _signup_form(subs, guard, 400, error, **_form_values())

    @app.post("/subscribe")
    @acting(refuse_cross_site)
    def subscribe() -> Response:
        form = request.form
        values = _form_values()
        address, name = values["email"], values["name"]
        topics, regions, language = values["topics"], values["regions"], values["language"]
        try:
            wait = limiter.hit(request.remote_addr or "-")
        except Unavailable:
            # Asked before anything is queued: during an outage the visitor keeps the form
            # and tries again, instead of a 500 and a lost sign-up.
            return _try_again(_signup_form(subs, guard, 503, _outage_text(), **values))
        if wait:
            return _too_many(wait)
        try:
            email = normalise_address(address)
        except ValueError:
            error = _("Please enter a valid e-mail address, e.g. name@example.org.")
            return _signup_form(subs, guard, 400, error, **values)
        # The honeypot: people leave `website` empty, bots fill it.
        if not form.get("website"):
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

    @app.get("/confirm/<token>")
    def confirm_page(token: str) -> Response:
        # A link scanner, a mail gateway or `curl -I` fetches the link: a button confirms.
        try:
            person = subs.pending(token)
        except ExpiredToken:
            return _expired(token)
        except BadToken:
            return bad_link()
        if person is None:
            return bad_link()
        g.language = person.language
        if person.status == Status.ACTIVE:
            return _confirmed(person, again=True)
        return notice(
            _("Confirm your subscription"),
            _("Please confirm with the button that you want to receive the newsletter."),
            button=Button(site_root() + urls.confirm_path(token), _("Confirm subscription")),
        )

    @app.post("/confirm/<token>")
    @acting(same_site(proof_in_url("the signed confirmation link went to the address only")))
    def confirm(token: str) -> Response:
        try:
            person = subs.pending(token)
            if person is None:
                return bad_link()
            g.language = person.language
            changed = subs.confirm(token, _visitor())
        except ExpiredToken:
            return _expired(token)
        except BadToken:
            return bad_link()
        return _confirmed(subs.store.by_uid(person.uid) or person, again=not changed)

    @app.post("/confirm/<token>/resend")
    @acting(same_site(proof_in_url("the signed confirmation link went to the address only")))
    def resend(token: str) -> Response:
        try:
            wait = limiter.hit(request.remote_addr or "-")
        except Unavailable:
            return _try_again(notice(_("Please try again in a minute"), status=503))
        if wait:
            return _too_many(wait)
        try:
            subs.check_resend(token)
        except ExpiredToken:
            return notice(
                _("This link is too old"),
                _(
                    "A new confirmation e-mail can only be asked for a while after the link "
                    "expired. Please subscribe again."
                ),
                status=410,
                links=[(_("Subscribe again"), site_root() + urls.SUBSCRIBE)],
            )
        except BadToken:
            return bad_link()
        subs.resend_later(token)
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
    @app.get("/unsubscribe/<token>")
    def unsubscribe_page(token: str) -> Response:
        issue = request.args.get(urls.ISSUE_PARAMETER, "")  # passed on to the button's POST
        try:
            subs.profile_for_unsubscribe(token)  # BadToken for a forged link
        except BadToken:
            return bad_link()
        return notice(
            _("Unsubscribe from the newsletter"),
            _("Do you want to stop receiving the newsletter? Please confirm with the button."),
            button=Button(
                site_root() + urls.unsubscribe_path(token) + (issue and urls.issue_query(issue)),
                _("Unsubscribe"),
            ),
        )

    @app.post("/unsubscribe/<token>")
    @acting(proof_in_url("RFC 8058: mailbox providers POST here; the signed link is the proof"))
    def unsubscribe(token: str) -> Response:
        # No CSRF token, no cookie: mailbox providers POST here (RFC 8058); the signed token
        # in the URL is the proof. Always 200, never a redirect (docs/requirements.md E7).
        # No link to the settings page here: mailbox providers are given this URL, and it
        # must not lead to the person's data.
        issue = request.args.get(urls.ISSUE_PARAMETER, "")  # counted per issue, not per person
        try:
            subs.profile_for_unsubscribe(token)  # BadToken for a forged link
            one_click = request.form.get("List-Unsubscribe") == "One-Click"
            channel = "one-click" if one_click else "link"
            subs.unsubscribe(token, channel, _visitor(), issue=issue)
        except BadToken:
            return bad_link()
        return notice(
            _("You have been unsubscribed"),
            _(
                "You will receive no more newsletters from us. We will not send a "
                "confirmation of this either."
            ),
            _("Changed your mind? You can subscribe again at any time."),
            links=[(_("Subscribe to the newsletter"), site_root() + urls.SUBSCRIBE)],
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
