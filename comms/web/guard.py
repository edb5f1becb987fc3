"""Which requests may act: GET and HEAD never do, a POST only through a view marked `acting`
after its check; signed CSRF tokens for the forms (rate limits: comms.audience.limits)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, request
from itsdangerous import BadSignature, SignatureExpired

from comms.audience.read_only import read_only
from comms.content import urls
from comms.core.config import Config
from comms.core.keys import Purpose, timed_signer
from comms.web.notices import _, notice, site_root

#: How long a form may stay open before its CSRF token expires (seconds).
CSRF_MAX_AGE = 4 * 3600


class CsrfGuard:
    """Stateless CSRF tokens: a random nonce signed with the secret and a purpose, time-limited.

    No cookie is needed: the token proves that the form came from this server recently and for
    this purpose (e.g. one subscriber's preferences), which is what a cross-site form cannot.
    """

    def __init__(self, secret: str, max_age: int = CSRF_MAX_AGE) -> None:
        self._signer = timed_signer(secret, Purpose.CSRF_FORM)
        self.max_age = max_age

    def issue(self, purpose: str) -> str:
        """A fresh token for a form of `purpose`."""
        return self._signer.sign(f"{purpose}:{secrets.token_urlsafe(8)}").decode("ascii")

    def check(self, purpose: str, token: str | None) -> bool:
        """True when `token` was issued by `issue(purpose)` less than max_age seconds ago."""
        if not token or len(token) > 500:
            return False
        try:
            value = self._signer.unsign(token, max_age=self.max_age).decode("utf-8", "replace")
        except (SignatureExpired, BadSignature):
            return False
        return value.rpartition(":")[0] == purpose


#: Methods that only read (RFC 9110 §9.2.1): they never change anything, on any route.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: A view's own check before it acts, given the route's values: None lets it act, a response
#: refuses (e.g. the form again with "please submit it again").
Check = Callable[..., Response | None]
View = TypeVar("View", bound=Callable[..., Any])


def acting(check: Check) -> Callable[[View], View]:
    """Mark a view that changes state: it runs only for a POST that passed `check` first.

    Every acting view says what proves its requests: a CSRF token (`check` verifies it), or
    why none is needed (`proof_in_url`, `authenticated`).
    """

    def mark(view: View) -> View:
        view.comms_check = check  # type: ignore[attr-defined]
        return view

    return mark


def proof_in_url(reason: str) -> Check:
    """The check of a view whose signed link is the proof (one-click unsubscribe, mailed
    confirmation and data links): nobody without the mail has the token."""

    def check(**_values: Any) -> Response | None:
        return None

    check.__doc__ = reason
    return check


#: The check of a view that authenticates its caller itself (the provider's webhook).
authenticated = proof_in_url


def cross_site() -> bool:
    """True when a browser says this request comes from another site's page (OWASP: verify
    the origin with standard headers): `Sec-Fetch-Site: cross-site` where the browser sends
    it, else an `Origin` or `Referer` of another host.

    Scripts and mail servers send none of them and count as same-site: for a sign-up the
    double opt-in mail proves the address, and RFC 8058 one-click POSTs come from servers.
    `Origin: null` alone is no verdict: our pages' `Referrer-Policy: no-referrer` makes
    browsers send it for our own forms (see `opaque_origin`).
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "cross-site"
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return False
    config: Config = current_app.config["COMMS_CONFIG"]
    ours = {urlsplit(request.host_url).netloc, urlsplit(config.settings.site.base_url).netloc}
    return urlsplit(origin).netloc not in ours


def opaque_origin() -> bool:
    """True for `Origin: null` from a browser that does not say `Sec-Fetch-Site`: our own
    form (no-referrer) or a sandboxed page elsewhere; a form's token must then decide."""
    return "Sec-Fetch-Site" not in request.headers and request.headers.get("Origin") == "null"


def same_site(check: Check) -> Check:
    """The check of a form on our pages: a POST another site's page made the browser send is
    refused (403, with a way to our form), whatever token it carries; then `check`.

    A CSRF token only proves that someone fetched our form recently, and a token fetched by
    a server works from any visitor's browser: without this, one page could have many
    visitors' browsers sign up third parties, each from its own IP.
    """

    def checked(**values: Any) -> Response | None:
        if cross_site():
            return notice(
                _("Please use the form on our website"),
                _(
                    "Your browser sent this form from another website. To protect you we "
                    "only accept it from our own pages."
                ),
                status=403,
                links=[
                    (_("Subscribe to the newsletter"), site_root() + urls.SUBSCRIBE),
                    (_("Start page"), site_root()),
                ],
            )
        return check(**values)

    return checked


def install_method_guard(app: Flask) -> None:
    """The one place that decides which requests may act, for every route of `app`.

    GET, HEAD and OPTIONS run read-only (comms.audience.read_only: a write or a mail raises)
    and never reach an acting view; any other method reaches only a view marked `acting`,
    after its check. Flask answers HEAD through the GET view, so a view that tested
    `request.method == "GET"` once took its POST branch for HEAD (and skipped its CSRF check).
    """

    @app.before_request
    def guard() -> Response | None:
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        check: Check | None = getattr(view, "comms_check", None)
        if request.method in SAFE_METHODS:
            if check is not None and request.method != "OPTIONS":
                abort(405)  # registered by mistake for GET: it would act on a link scanner's GET
            stack = ExitStack()
            stack.enter_context(read_only())
            g.comms_read_only = stack
            return None
        if view is None:
            return None  # routing answers (404, 405)
        if check is None:
            abort(405)  # a view that acts without saying what proves its requests
        return check(**(request.view_args or {}))

    @app.teardown_request
    def end_read_only(_exc: BaseException | None) -> None:
        stack = g.pop("comms_read_only", None)
        if stack is not None:
            stack.close()
