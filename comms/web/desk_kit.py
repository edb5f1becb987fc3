"""What every desk page shares: its blueprint, login cookie, page rendering, redirects, the
role-and-form-token check and the security headers.

The desk's pages are split by concept into modules (desk_pages for login, lists and issues;
others for writing, sending, people) that each add routes through one `DeskKit`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, request

from comms.audience.read_only import bookkeeping
from comms.core.config import Config
from comms.core.languages import home_edition
from comms.db.desk_accounts import Account, Login
from comms.publish.templating import render_template, translate
from comms.sending.desk_office import Office
from comms.web.guard import authenticated, cross_site

#: The guard's check of the desk's POSTs: the desk checks its own login, role and form token
#: (`DeskKit.needs`) before a view acts.
DESK_FORM = authenticated("the desk checks its login, role and form token itself")

PREFIX = "/desk"
#: Scripts only our own files (no inline script, no other host), which may ask only us; styles
#: inline (the mail's own, shown in sandboxed frames); images ours and those a mail shows;
#: forms to us only; never framed by anyone.
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})

#: A desk view: it gets the logged-in account and the route's arguments.
View = Callable[..., Response]


def local_request() -> bool:
    """Whether the desk is reached over plain HTTP on this machine (the one place where its
    cookie may go without TLS)."""
    host = request.host.rsplit(":", 1)[0] if request.host else ""
    return host in LOCAL_HOSTS and not request.is_secure


def cookie_name() -> str:
    """The login cookie's name: `__Host-` (HTTPS only, this host only) unless on localhost."""
    return "comms-desk" if local_request() else "__Host-comms-desk"


def login_token() -> str | None:
    """The login token the request's desk cookie carries, if any."""
    return request.cookies.get(cookie_name())


class DeskKit:
    """The desk's blueprint with the helpers its page modules share."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.config: Config = office.config
        self.language = home_edition(self.config).language
        self.blueprint = Blueprint("desk", __name__, url_prefix=PREFIX)
        idle = timedelta(minutes=self.config.settings.desk.idle_minutes)
        accounts = office.accounts
        #: What every page's template gets besides its own context (the sign-on's button).
        self.shared: dict[str, Any] = {}

        @self.blueprint.before_request
        def who() -> Response | None:
            # SameSite=Strict keeps the login cookie off other sites' forms; the login form
            # itself has no cookie yet, so a browser's own word on the origin decides there
            # (login CSRF: another site logging a visitor into the attacker's account).
            if request.method == "POST" and cross_site():
                message = self.text("Please use the form on our website")
                return self.page("message.html.j2", 403, message=message)
            # The login's last-seen time (its idle timeout) is written on a GET too: the
            # guard's one exception besides the anonymous counters
            # (comms.audience.read_only.bookkeeping).
            with bookkeeping():
                g.desk_login = accounts.login(login_token(), idle)
            return None

        @self.blueprint.after_request
        def headers(response: Response) -> Response:
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Cache-Control"] = "no-store"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
            response.vary.add("Cookie")
            return response

    def text(self, message: str) -> str:
        """`message` in the desk's language (the site's first edition)."""
        return translate(self.language, message)

    def page(self, name: str, status: int = 200, **context: Any) -> Response:
        """The desk template `desk/<name>` with the login's account and form token."""
        login: Login | None = g.get("desk_login")
        account = login.account if login is not None and login.complete else None
        html = render_template(
            "web",
            f"desk/{name}",
            self.language,
            lang=self.language,
            site=self.config.settings.site,
            account=account,
            csrf=login.csrf if login is not None else "",
            prefix=PREFIX,
            **(self.shared | context),
        )
        return Response(html, status=status, mimetype="text/html")

    def see_other(self, path: str) -> Response:
        """A 303 redirect to `path` inside the desk."""
        return Response(status=303, headers={"Location": PREFIX + path})

    def form_ok(self) -> bool:
        """Whether the POST carries the login's form token."""
        login: Login | None = g.get("desk_login")
        sent = request.form.get("csrf_token", "")
        return login is not None and hmac.compare_digest(login.csrf.encode(), sent.encode())

    def needs(self, role: str) -> Callable[[View], View]:
        """A view for complete logins of `role` or above; others go to the login page. A POST
        must also carry the login's form token."""

        def wrap(view: View) -> View:
            def checked(**kwargs: Any) -> Response:
                login: Login | None = g.get("desk_login")
                if login is None or not login.complete:
                    return self.see_other("/login")
                if request.method == "POST" and not self.form_ok():
                    message = self.text("The form has expired.")
                    return self.page("message.html.j2", 400, message=message)
                account: Account = login.account
                if not account.may(role):
                    message = self.text("Your role may not do this.")
                    return self.page("message.html.j2", 403, message=message)
                return view(account, **kwargs)

            checked.__name__ = view.__name__
            return checked

        return wrap
