"""The subscriber's own settings page, and the data rights behind it: export and erasure are
asked for there and done through a single-use link mailed to the address."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from flask import Flask, Response, g, request

from comms.audience.data_requests import RevokedLink, UsedLink
from comms.audience.subscriptions import Subscriptions
from comms.content import urls
from comms.core.errors import BadToken, ExpiredToken
from comms.db.people import Subscriber
from comms.web.guard import CsrfGuard, acting, proof_in_url, same_site
from comms.web.notices import Button, _, bad_link, language_choices, notice, page, site_root


def _revoked() -> Response:
    return notice(
        _("This link is no longer valid"),
        _(
            "All links to these settings were logged out. The next newsletter brings a new "
            "link; it was also sent to you by e-mail."
        ),
        status=404,
        links=[(_("Subscribe to the newsletter"), site_root() + urls.SUBSCRIBE)],
    )


def _link_error(exc: BadToken) -> Response:
    """The page for a mailed data link that cannot be used (any more)."""
    if isinstance(exc, ExpiredToken | UsedLink):
        heading = (
            _("This link has expired")
            if isinstance(exc, ExpiredToken)
            else _("This link has already been used")
        )
        return notice(
            heading,
            _(
                "For your protection such a link works only once and for a short time. You can "
                "ask for a new one on your settings page (link at the end of every newsletter)."
            ),
            status=410,
        )
    return _revoked() if isinstance(exc, RevokedLink) else bad_link()


def _settings_routes(app: Flask, subs: Subscriptions, guard: CsrfGuard) -> None:
    def settings_page(token: str, person: Subscriber, status: int = 200, **extra: Any) -> Response:
        settings = subs.config.settings
        return page(
            "preferences.html.j2",
            status,
            person=person,
            here=site_root() + urls.preferences_path(token),
            leave_url=site_root() + urls.unsubscribe_path(subs.unsubscribe_token(person)),
            csrf_token=guard.issue("preferences:" + token),
            topics=settings.topics,
            regions=settings.regions,
            languages=language_choices(subs.config),
            minutes=settings.subscribe.data_link_minutes,
            **{"saved": False, "error": "", **extra},
        )

    def checked(token: str) -> Subscriber | Response:
        try:
            person = subs.profile(token)
        except BadToken as exc:
            return _link_error(exc)
        if person is None:
            return bad_link()
        g.language = person.language  # the page speaks the person's language
        return person

    def csrf_checked(token: str, **_values: Any) -> Response | None:
        """The check of every form on the settings page: its token, for this link only."""
        if guard.check("preferences:" + token, request.form.get("csrf_token")):
            return None
        person = checked(token)
        if isinstance(person, Response):
            return person
        error = _("The form was open too long or is incomplete. Please submit it again.")
        return settings_page(token, person, 400, error=error)

    @app.get("/preferences/<token>")
    def preferences_page(token: str) -> Response:
        person = checked(token)
        if isinstance(person, Response):
            return person
        return settings_page(token, person)

    @app.post("/preferences/<token>")
    @acting(same_site(csrf_checked))
    def preferences(token: str) -> Response:
        person = checked(token)
        if isinstance(person, Response):
            return person
        form = request.form
        updated = subs.update(
            token, form.getlist("topics"), form.getlist("regions"), form.get("language", "")
        )
        g.language = (updated or person).language
        return settings_page(token, updated or person, saved=True)

    #: The URL's word for each data request: export and erasure ("delete").
    requests = {"export": "export", "delete": "erase"}

    @app.post("/preferences/<token>/<any(export, delete):action>")
    @acting(same_site(csrf_checked))
    def data_request(token: str, action: str) -> Response:
        person = checked(token)
        if isinstance(person, Response):
            return person
        if action == "delete" and request.form.get("really") != "yes":
            error = _("Please tick the box to confirm that all your data should be deleted.")
            return settings_page(token, person, 400, error=error)
        subs.request_data_link(token, requests[action])
        minutes = subs.config.settings.subscribe.data_link_minutes
        return notice(
            _("Please check your e-mail"),
            _(
                "To protect your data we have sent a link to %(address)s. It works once, for "
                "%(minutes)s minutes."
            )
            % {"address": person.email, "minutes": minutes},
            _("Nothing happens until you use that link."),
        )

    @app.post("/preferences/<token>/revoke")
    @acting(same_site(csrf_checked))
    def revoke(token: str) -> Response:
        person = checked(token)
        if isinstance(person, Response):
            return person
        subs.revoke_links(token)
        return notice(
            _("All links have been logged out"),
            _(
                "Earlier links to your settings no longer work. We have sent a new link to "
                "%(address)s."
            )
            % {"address": person.email},
            _("The unsubscribe links in newsletters you received keep working."),
        )


def _data_routes(app: Flask, subs: Subscriptions) -> None:
    @app.get("/my-data/<token>")
    def my_data_page(token: str) -> Response:
        # A link scanner, a mail gateway or `curl -I` fetches the link: a button does it.
        try:
            purpose, _person, _link = subs.data_link(token)
        except BadToken as exc:
            return _link_error(exc)
        return _data_page(purpose, site_root() + urls.data_path(token))

    @app.post("/my-data/<token>")
    @acting(same_site(proof_in_url("the single-use link was mailed to the address only")))
    def my_data(token: str) -> Response:
        try:
            purpose, data = subs.use_data_link(token)
        except BadToken as exc:
            return _link_error(exc)
        if purpose == "erase":
            return notice(
                _("Your data has been deleted"),
                _(
                    "We have deleted your address and everything stored about you. Only a "
                    "one-way hash of the address remains, so that it never receives the "
                    "newsletter again."
                ),
            )
        body = json.dumps(data or {}, ensure_ascii=False, indent=2, default=_iso)
        response = Response(body + "\n", mimetype="application/json")
        response.headers["Content-Disposition"] = 'attachment; filename="meine-daten.json"'
        response.headers["Cache-Control"] = "no-store"
        return response


def _data_page(purpose: str, here: str) -> Response:
    if purpose == "erase":
        return notice(
            _("Delete your data"),
            _(
                "Delete your address and everything stored about you. We only keep a one-way "
                "hash of the address, so that it never receives the newsletter again by mistake."
            ),
            _("This cannot be undone."),
            button=Button(here, _("Delete my data")),
        )
    return notice(
        _("Download your data"),
        _(
            "Download everything we store about you as a JSON file: address, settings, the "
            "record of your consent and which issues we sent you."
        ),
        button=Button(here, _("Download my data")),
    )


def add_preference_routes(app: Flask, subs: Subscriptions, guard: CsrfGuard) -> None:
    """The settings page, its data requests, "log out all links" and the mailed data links."""
    _settings_routes(app, subs, guard)
    _data_routes(app, subs)


def _iso(value: object) -> str:
    """Times in the export as ISO 8601, as `comms subscribers show --json` writes them."""
    return value.isoformat() if isinstance(value, (datetime, date)) else str(value)
