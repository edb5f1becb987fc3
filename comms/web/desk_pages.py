"""The desk in the browser at `/desk/` (`[desk] enabled`): login with password and TOTP, the
list of items, one issue's editions, proofs, approval and the audit log.

Its own blueprint with its own checks: a login cookie of its own (`__Host-` and Secure outside
localhost, HttpOnly, SameSite=Strict) that no public page reads or sets, its own CSP with
`frame-ancestors 'none'`, no caching, CSRF tokens on every form, and GET/HEAD never change
anything. Logins live in the database (comms.db.desk_accounts), so every `comms serve` on it
knows them. Without a login no desk page shows content: it redirects to the login page.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, request

from comms.audience.limits import SharedLimit
from comms.audience.read_only import bookkeeping
from comms.content.models import KINDS
from comms.core.config import Config
from comms.core.errors import CommsError
from comms.core.keys import Purpose
from comms.core.languages import home_edition, site_editions
from comms.db.desk_accounts import Account, Login
from comms.publish.templating import render_template, translate
from comms.sending.approval import short
from comms.sending.desk_office import Office
from comms.web.guard import CsrfGuard, acting, authenticated
from comms.web.preview import WIDTHS, local_images

#: The guard's check of the desk's POSTs: the desk checks its own login, role and form token
#: (its `needs` wrapper) before a view acts.
DESK_FORM = authenticated("the desk checks its login, role and form token itself")

PREFIX = "/desk"
#: Scripts none; styles inline (the mail's own, shown in sandboxed frames); images ours and
#: those a mail shows; forms to us only; never framed by anyone.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
#: The login limit's window per IP address (seconds); its size is `desk.login_limit`.
LOGIN_WINDOW = 15 * 60
#: How long the code may take after the password was accepted.
CODE_TIME = timedelta(minutes=5)
#: What a redirect after an action may report (never text from the request).
DONE = {"approve", "proof", "save"}
#: The kinds in the order the list shows them: what is sent first.
ORDER = ("issue", "event", "practice", "award")


def _local() -> bool:
    """Whether the desk is reached over plain HTTP on this machine (the one place where its
    cookie may go without TLS)."""
    host = request.host.rsplit(":", 1)[0] if request.host else ""
    return host in LOCAL_HOSTS and not request.is_secure


def cookie_name() -> str:
    """The login cookie's name: `__Host-` (HTTPS only, this host only) unless on localhost."""
    return "comms-desk" if _local() else "__Host-comms-desk"


def desk_blueprint(office: Office, limit: SharedLimit | None = None) -> Blueprint:
    """The desk's pages over `office`; `limit` counts login attempts per IP address (default:
    `desk.login_limit` per 15 minutes, in the database)."""
    config: Config = office.config
    settings = config.settings.desk
    accounts = office.accounts
    guard = CsrfGuard(office.store.secret)
    login_limit = limit or SharedLimit(
        office.store, Purpose.DESK_LOGIN_RATE, settings.login_limit, LOGIN_WINDOW
    )
    lifetime = timedelta(minutes=settings.session_minutes)
    idle = timedelta(minutes=settings.idle_minutes)
    lockout = timedelta(minutes=settings.lockout_minutes)
    language = home_edition(config).language
    desk = Blueprint("desk", __name__, url_prefix=PREFIX)

    def _(message: str) -> str:
        return translate(language, message)

    def page(name: str, status: int = 200, **context: Any) -> Response:
        login: Login | None = g.get("desk_login")
        account = login.account if login is not None and login.complete else None
        html = render_template(
            "web",
            f"desk/{name}",
            language,
            lang=language,
            site=config.settings.site,
            account=account,
            csrf=login.csrf if login is not None else "",
            prefix=PREFIX,
            **context,
        )
        return Response(html, status=status, mimetype="text/html")

    def see_other(path: str) -> Response:
        return Response(status=303, headers={"Location": PREFIX + path})

    def set_cookie(response: Response, token: str) -> None:
        local = _local()
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
        local = _local()
        response.delete_cookie(
            cookie_name(),
            path="/" if not local else PREFIX + "/",
            secure=not local,
            httponly=True,
            samesite="Strict",
        )

    def token() -> str | None:
        return request.cookies.get(cookie_name())

    def form_ok() -> bool:
        login: Login | None = g.get("desk_login")
        sent = request.form.get("csrf_token", "")
        return login is not None and hmac.compare_digest(login.csrf.encode(), sent.encode())

    def limited() -> Response | None:
        if login_limit.hit(request.remote_addr or "unknown") > 0:
            return page("login.html.j2", 429, error=_("Too many attempts; try again later."))
        return None

    @desk.before_request
    def who() -> Response | None:
        # The login's last-seen time (its idle timeout) is written on a GET too: the guard's
        # one exception besides the anonymous counters (comms.audience.read_only.bookkeeping).
        with bookkeeping():
            g.desk_login = accounts.login(token(), idle)
        return None

    @desk.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.vary.add("Cookie")
        return response

    def needs(role: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        """A view for complete logins of `role` or above; others go to the login page."""

        def wrap(view: Callable[..., Response]) -> Callable[..., Response]:
            def checked(**kwargs: Any) -> Response:
                login: Login | None = g.get("desk_login")
                if login is None or not login.complete:
                    return see_other("/login")
                if request.method == "POST" and not form_ok():
                    return page("message.html.j2", 400, message=_("The form has expired."))
                if not login.account.may(role):
                    return page("message.html.j2", 403, message=_("Your role may not do this."))
                return view(login.account, **kwargs)

            checked.__name__ = view.__name__
            return checked

        return wrap

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
            accounts.audit(name, "login-failed", detail=f"password from {request.remote_addr}")
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
            (edition, local_images(config, view.rendered[edition.language].html))
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

    def edit_page(kind: str, slug: str, status: int = 200, **context: Any) -> Response:
        try:
            source = office.source(kind, slug)
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        return page("edit.html.j2", status, kind=kind, slug=slug, source=source, **context)

    @desk.route("/edit/<kind>/<slug>", methods=["GET", "HEAD"])
    @needs("editor")
    def edit(account: Account, kind: str, slug: str) -> Response:
        done = request.args.get("done", "")
        return edit_page(kind, slug, done=done if done in DONE else "", error="", text=None)

    @desk.route("/edit/<kind>/<slug>", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def save(account: Account, kind: str, slug: str) -> Response:
        text = request.form.get("text", "")
        try:
            office.save(kind, slug, text, request.form.get("version", ""), account)
        except CommsError as exc:
            # What was typed stays in the form, beside the reason; the file is untouched.
            return edit_page(kind, slug, 409, done="", error=str(exc), text=text)
        return see_other(f"/edit/{kind}/{slug}?done=save")

    @desk.route("/audit", methods=["GET", "HEAD"])
    @needs("admin")
    def audit(account: Account) -> Response:
        return page("audit.html.j2", entries=accounts.audit_log())

    @desk.route("/<path:rest>", methods=["GET", "HEAD"])
    @needs("editor")
    def unknown(account: Account, rest: str) -> Response:
        return page("message.html.j2", 404, message=_("This page does not exist."))

    return desk
