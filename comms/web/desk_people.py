"""The desk's admin pages: subscribers (search, one person with their consent ledger, export,
erasure with a confirmation step), the desk accounts (list, disable, reset) and the settings
(read only, no secrets).

Addresses never stand in a URL (a proxy's access log keeps URLs): the search is a POST and a
person is named by their public id. Every export, erasure and account change goes into the
audit log; an erasure's entry does not name the address it erased.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from comms.audience.people_admin import EXPORT_FORMATS, PeopleAdmin
from comms.core.config import Settings
from comms.core.credentials import totp_uri
from comms.core.errors import CommsError
from comms.core.logs import redact
from comms.core.settings import SECRETS
from comms.db.desk_accounts import Account
from comms.web.desk_kit import DESK_FORM, DeskKit
from comms.web.guard import acting

#: What a redirect after an action may report (never text from the request).
DONE = {"disable", "erase"}
#: The longest address part a search takes.
SEARCH_LENGTH = 200


def settings_rows(kit: DeskKit) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every setting per section as (key, shown value); secrets only as set or not set."""
    config = kit.config
    hidden = set(config.secret_values())
    secrets = {".".join(path) for path in SECRETS}
    top: list[tuple[str, str]] = []
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for name in Settings.model_fields:
        value = getattr(config.settings, name)
        if not hasattr(type(value), "model_fields"):
            top.append((name, redact(str(value), hidden)))
            continue
        rows = []
        for sub in type(value).model_fields:
            shown = getattr(value, sub)
            if f"{name}.{sub}" in secrets:
                word = "set" if shown else "not set"
                rows.append((sub, kit.text(word)))
            else:
                rows.append((sub, redact(str(shown), hidden)))
        sections.append((name, rows))
    return [("", top), *sections]


def add_people_pages(kit: DeskKit) -> None:
    """Add the subscriber, account and settings pages (admins only) to the desk."""
    desk, page, see_other, needs, _ = kit.blueprint, kit.page, kit.see_other, kit.needs, kit.text
    accounts = kit.office.accounts
    people = PeopleAdmin(kit.config, kit.office.store)

    def done() -> str:
        word = request.args.get("done", "")
        return word if word in DONE else ""

    @desk.route("/people", methods=["GET", "HEAD"])
    @needs("admin")
    def search_form(account: Account) -> Response:
        return page("people.html.j2", query="", found=None, done=done())

    @desk.route("/people", methods=["POST"])
    @acting(DESK_FORM)
    @needs("admin")
    def search(account: Account) -> Response:
        query = request.form.get("q", "")[:SEARCH_LENGTH].strip()
        try:
            number = int(request.form.get("page", "1"))
        except ValueError:
            number = 1
        found = people.search(query, number) if query else None
        return page("people.html.j2", query=query, found=found, done="")

    @desk.route("/people/<uid>", methods=["GET", "HEAD"])
    @needs("admin")
    def person(account: Account, uid: str) -> Response:
        shown = people.person(uid)
        if shown is None:
            return page("message.html.j2", 404, message=_("No such subscriber."))
        keep_ip = kit.config.settings.subscribe.keep_ip
        return page("person.html.j2", person=shown, keep_ip=keep_ip, settings=kit.config.settings)

    @desk.route("/people/export", methods=["POST"])
    @acting(DESK_FORM)
    @needs("admin")
    def export(account: Account) -> Response:
        fmt = request.form.get("format", "csv")
        if fmt not in EXPORT_FORMATS:
            return page("message.html.j2", 400, message=_("Unknown format."))
        written = people.export(fmt)
        accounts.audit(
            account.name, "subscribers-export", detail=f"{written.count} subscriber(s), {fmt}"
        )
        mimetype = "text/csv" if fmt == "csv" else "application/json"
        return Response(
            written.text.encode("utf-8"),
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="subscribers.{fmt}"'},
        )

    @desk.route("/people/<uid>/erase", methods=["POST"])
    @acting(DESK_FORM)
    @needs("admin")
    def erase(account: Account, uid: str) -> Response:
        if request.form.get("confirm") != "yes":
            shown = people.person(uid)
            if shown is None:
                return page("message.html.j2", 404, message=_("No such subscriber."))
            return page("erase.html.j2", person=shown)
        removed = people.erase(uid)
        if removed is None:
            return page("message.html.j2", 404, message=_("No such subscriber."))
        # Not the address, nor the id that found it: only what went.
        detail = (
            f"profile {removed['subscriber']}, consent {removed['consent']}, "
            f"delivery links {removed['deliveries']}, outbox {removed['outbox']}"
        )
        accounts.audit(account.name, "subscriber-erase", detail=detail)
        return see_other("/people?done=erase")

    @desk.route("/accounts", methods=["GET", "HEAD"])
    @needs("admin")
    def account_list(account: Account) -> Response:
        return page("accounts.html.j2", accounts=accounts.accounts(), done=done(), error="")

    def refuse_self(account: Account, name: str) -> Response | None:
        if " ".join(name.split()) != account.name:
            return None
        error = _("Not your own account: another admin or comms users does that.")
        return page("accounts.html.j2", 409, accounts=accounts.accounts(), done="", error=error)

    @desk.route("/accounts/disable", methods=["POST"])
    @acting(DESK_FORM)
    @needs("admin")
    def disable(account: Account) -> Response:
        name = request.form.get("name", "")[:200]
        refused = refuse_self(account, name)
        if refused is not None:
            return refused
        try:
            changed = accounts.disable(name)
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        accounts.audit(account.name, "account-disable", changed.name)
        return see_other("/accounts?done=disable")

    @desk.route("/accounts/reset", methods=["POST"])
    @acting(DESK_FORM)
    @needs("admin")
    def reset(account: Account) -> Response:
        name = request.form.get("name", "")[:200]
        refused = refuse_self(account, name)
        if refused is not None:
            return refused
        try:
            issued = accounts.reset(name)
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        accounts.audit(account.name, "account-reset", issued.account.name)
        uri = None
        if issued.totp_secret is not None:
            issuer = kit.config.settings.site.name or "comms"
            uri = totp_uri(issued.totp_secret, issued.account.name, issuer)
        return page("issued.html.j2", issued=issued, uri=uri)

    @desk.route("/settings", methods=["GET", "HEAD"])
    @needs("admin")
    def settings(account: Account) -> Response:
        context: dict[str, Any] = {"sections": settings_rows(kit)}
        return page("settings.html.j2", **context)
