"""The desk in the browser at `/desk/` (`[desk] enabled`): login with password and TOTP, the
list of items, one issue's editions, proofs, approval and the audit log.

Its own blueprint with its own checks: a login cookie of its own (`__Host-` and Secure outside
localhost, HttpOnly, SameSite=Strict) that no public page reads or sets, its own CSP with
`frame-ancestors 'none'`, no caching, CSRF tokens on every form, and GET/HEAD never change
anything. Logins live in the database (comms.db.desk_accounts), so every `comms serve` on it
knows them. Without a login no desk page shows content: it redirects to the login page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, request

from comms.audience.limits import SharedLimit
from comms.content.models import KINDS
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.core.keys import Purpose
from comms.core.languages import site_editions
from comms.db.desk_accounts import Account, Login
from comms.publish.images import inline_images
from comms.sending.approval import short
from comms.sending.desk_office import Office
from comms.web.desk_kit import (
    DESK_FORM,
    PREFIX,
    DeskKit,
    cookie_name,
    local_request,
    login_token,
)
from comms.web.desk_media import add_media_pages
from comms.web.desk_people import add_people_pages
from comms.web.desk_sending import add_sending_pages
from comms.web.desk_sso import add_sso_pages
from comms.web.desk_writing import add_writing
from comms.web.guard import CsrfGuard, acting
from comms.web.preview import WIDTHS, local_images

#: The login limit's window per IP address (seconds); its size is `desk.login_limit`.
LOGIN_WINDOW = 15 * 60
#: How long the code may take after the password was accepted.
CODE_TIME = timedelta(minutes=5)
#: What a redirect after an action may report (never text from the request).
DONE = {"approve", "proof"}
#: The kinds in the order the list shows them: what is sent first.
ORDER = ("issue", "event", "practice", "award")


def desk_blueprint(office: Office, limit: SharedLimit | None = None) -> Blueprint:
    """The desk's pages over `office`; `limit` counts login attempts per IP address (default:
    `desk.login_limit` per 15 minutes, in the database)."""
    config: Config = office.config
    settings = config.settings.desk
    accounts = office.accounts
    kit = DeskKit(office)
    add_sending_pages(kit)
    add_writing(kit)
    desk, page, see_other, needs, form_ok, _ = (
        kit.blueprint,
        kit.page,
        kit.see_other,
        kit.needs,
        kit.form_ok,
        kit.text,
    )
    guard = CsrfGuard(office.store.secret)
    login_limit = limit or SharedLimit(
        office.store, Purpose.DESK_LOGIN_RATE, settings.login_limit, LOGIN_WINDOW
    )
    lifetime = timedelta(minutes=settings.session_minutes)
    lockout = timedelta(minutes=settings.lockout_minutes)
    language = kit.language

    def set_cookie(response: Response, token: str) -> None:
        local = local_request()
        response.set_cookie(
            cookie_name(),
            token,
            max_age=int(lifetime.total_seconds()),
            path="/" if not local else PREFIX + "/",
            secure=not local,
            httponly=True,
            samesite="Strict",
        )

    def forget_cookie(response: Response) -> None:
        local = local_request()
        response.delete_cookie(
            cookie_name(),
            path="/" if not local else PREFIX + "/",
            secure=not local,
            httponly=True,
            samesite="Strict",
        )

    token = login_token
    add_sso_pages(kit, set_cookie)

    def limited() -> Response | None:
        if login_limit.hit(request.remote_addr or "unknown") > 0:
            return page("login.html.j2", 429, error=_("Too many attempts; try again later."))
        return None

    @desk.route("/", methods=["GET", "HEAD"])
    @needs("editor")
    def index(account: Account) -> Response:
        items = office.items()
        kinds = [(_(KINDS[kind].plural), [i for i in items if i.kind == kind]) for kind in ORDER]
        return page("items.html.j2", kinds=kinds)

    @desk.route("/login", methods=["GET", "HEAD"])
    def login_form() -> Response:
        return page("login.html.j2", form_token=guard.issue("desk-login"), error="")

    @desk.route("/login", methods=["POST"])
    @acting(DESK_FORM)
    def login() -> Response:
        refused = limited()
        if refused is not None:
            return refused
        if not guard.check("desk-login", request.form.get("csrf_token")):
            expired = _("The form has expired.")
            return page("login.html.j2", 400, form_token=guard.issue("desk-login"), error=expired)
        name = request.form.get("name", "")[:200]
        found = accounts.check_password(
            name, request.form.get("password", "")[:1000], settings.lockout_after, lockout
        )
        if found is None:
            # A name that is no account is kept out of the log: it may be a mistyped password.
            known = name if accounts.find(name) is not None else "?"
            accounts.audit(known, "login-failed", detail=f"password from {request.remote_addr}")
            wrong = _("Name or password is wrong, or the account is locked.")
            return page("login.html.j2", 401, form_token=guard.issue("desk-login"), error=wrong)
        old = token()
        if old:
            accounts.end(old)
        response = see_other("/code" if found.two_factor else "/")
        started = accounts.start(
            found, not found.two_factor, CODE_TIME if found.two_factor else lifetime
        )
        set_cookie(response, started)
        if not found.two_factor:
            accounts.audit(found.name, "login", detail=f"from {request.remote_addr}")
        return response

    def pending() -> Login | None:
        login: Login | None = g.get("desk_login")
        return login if login is not None and not login.complete else None

    @desk.route("/code", methods=["GET", "HEAD"])
    def code_form() -> Response:
        if pending() is None:
            return see_other("/")
        return page("code.html.j2", error="")

    @desk.route("/code", methods=["POST"])
    @acting(DESK_FORM)
    def code() -> Response:
        refused = limited()
        if refused is not None:
            return refused
        login = pending()
        current = token()
        if login is None or current is None:
            return see_other("/")
        if not form_ok():
            return page("code.html.j2", 400, error=_("The form has expired."))
        account = login.account
        if not accounts.check_code(
            account.id, request.form.get("code", "")[:20], settings.lockout_after, lockout
        ):
            accounts.audit(account.name, "login-failed", detail=f"code from {request.remote_addr}")
            return page("code.html.j2", 401, error=_("The code is wrong or was used already."))
        response = see_other("/")
        set_cookie(response, accounts.complete(current, lifetime))
        accounts.audit(account.name, "login", detail=f"from {request.remote_addr}")
        return response

    @desk.route("/logout", methods=["POST"])
    @acting(DESK_FORM)
    def logout() -> Response:
        login: Login | None = g.get("desk_login")
        current = token()
        if login is not None and current is not None and form_ok():
            accounts.end(current)
            accounts.audit(login.account.name, "logout")
        response = see_other("/login")
        forget_cookie(response)
        return response

    def issue_page(account: Account, slug: str, status: int = 200, **context: Any) -> Response:
        try:
            view = office.issue(slug)
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        offered = site_editions(config)
        editions = [
            (
                edition,
                local_images(config, inline_images(config, view.rendered[edition.language].html)),
            )
            for edition in offered.all
        ]
        return page(
            "issue.html.j2",
            status,
            view=view,
            editions=editions,
            widths=WIDTHS,
            short=short,
            may_approve=account.may("approver"),
            **context,
        )

    @desk.route("/issues/<slug>/", methods=["GET", "HEAD"])
    @needs("editor")
    def issue(account: Account, slug: str) -> Response:
        done = request.args.get("done", "")
        return issue_page(account, slug, done=done if done in DONE else "", error="")

    @desk.route("/issues/<slug>/approve", methods=["POST"])
    @acting(DESK_FORM)
    @needs("approver")
    def approve(account: Account, slug: str) -> Response:
        try:
            office.approve(slug, account, request.form.get("version", ""))
        except CommsError as exc:
            accounts.audit(account.name, "approve-refused", slug, detail=str(exc))
            return issue_page(account, slug, 409, done="", error=str(exc))
        return see_other(f"/issues/{slug}/?done=approve")

    @desk.route("/issues/<slug>/proof", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def proof(account: Account, slug: str) -> Response:
        try:
            office.proof(slug, account, request.form.get("edition", language))
        except CommsError as exc:
            return issue_page(account, slug, 409, done="", error=str(exc))
        return see_other(f"/issues/{slug}/?done=proof")

    @desk.route("/audit", methods=["GET", "HEAD"])
    @needs("admin")
    def audit(account: Account) -> Response:
        return page("audit.html.j2", entries=accounts.audit_log())

    add_people_pages(kit)

    @desk.route("/<path:rest>", methods=["GET", "HEAD"])
    @needs("editor")
    def unknown(account: Account, rest: str) -> Response:
        return page("message.html.j2", 404, message=_("This page does not exist."))

    add_media_pages(kit)
    return desk
