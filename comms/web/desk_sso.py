"""Single sign-on to the desk over OpenID Connect (`[desk_oidc]`), with Authlib as the client.

The authorization code flow with PKCE (S256): `/desk/sso/start` sends the browser to the
provider with a fresh state, nonce and code verifier, kept until the callback in a short-lived
cookie signed with the secret key (so any `comms serve` behind the proxy can take the
callback). `/desk/sso/callback` checks the state, trades the code for tokens, verifies the ID
token (signature against the provider's keys, issuer, audience, expiry, nonce) and takes the
configured claim (from the ID token, else from the userinfo endpoint of the same subject).

The provider only says who someone is: the claim must name an enabled desk account (its
address or its name), whose role is what the login may do; nobody without one gets in. No TOTP
code is asked after it: the provider does the second factor.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from flask import Response, request
from itsdangerous import BadSignature
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from comms.audience.read_only import bookkeeping
from comms.core.clock import now_utc
from comms.core.keys import Purpose, timed_signer
from comms.core.settings import DeskOidc
from comms.db.desk_accounts import Account, DeskAccounts
from comms.web.desk_kit import PREFIX, DeskKit, local_request, login_token

log = logging.getLogger(__name__)

#: How long the way to the provider and back may take.
FLOW_SECONDS = 10 * 60
#: Seconds of clock difference to the provider that an ID token's times may show.
LEEWAY = 120
#: Seconds an HTTP request to the provider may take.
TIMEOUT = 10
SCOPE = "openid email profile"


class SignOnError(Exception):
    """The sign-on failed; the message is for the log and the audit, not for the page."""


class Provider:
    """The identity provider as its discovery document describes it (read once, the keys again
    when a token names one not seen yet)."""

    def __init__(self, settings: DeskOidc) -> None:
        assert settings.issuer is not None
        self.settings = settings
        self.issuer: str = settings.issuer
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    def _get(self, url: str, **options: Any) -> dict[str, Any]:
        try:
            answer = requests.get(url, timeout=TIMEOUT, **options)
            answer.raise_for_status()
            data = answer.json()
        except (requests.RequestException, ValueError) as exc:
            raise SignOnError(f"the provider did not answer {url}: {exc}") from None
        if not isinstance(data, dict):
            raise SignOnError(f"{url} is not a JSON object")
        return data

    def metadata(self) -> dict[str, Any]:
        """The discovery document; its issuer must be the configured one exactly."""
        if self._metadata is None:
            found = self._get(f"{self.issuer}/.well-known/openid-configuration")
            if found.get("issuer") != self.issuer:
                raise SignOnError(f"the provider calls itself {found.get('issuer')!r}")
            self._metadata = found
        return self._metadata

    def keys(self, fresh: bool = False) -> KeySet:
        """The provider's signing keys."""
        if self._keys is None or fresh:
            self._keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
        return self._keys

    def client(self, redirect_uri: str) -> OAuth2Session:
        """An Authlib client of the desk at the provider."""
        return OAuth2Session(
            self.settings.client_id,
            self.settings.client_secret,
            scope=SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT,
        )

    def id_token(self, token: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The verified claims of the ID token in a token response."""
        raw = token.get("id_token")
        if not isinstance(raw, str):
            raise SignOnError("the token response has no ID token")
        algorithms = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
        try:
            try:
                decoded = jwt.decode(raw, self.keys(), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys
                decoded = jwt.decode(raw, self.keys(fresh=True), registry=registry)
            options = {
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.settings.client_id},
            }
            params = {
                "nonce": nonce,
                "client_id": self.settings.client_id,
                "access_token": token.get("access_token"),
            }
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(now=int(now_utc().timestamp()), leeway=LEEWAY)
        except (JoseError, ValueError) as exc:
            raise SignOnError(f"the ID token is not valid: {exc}") from None
        return dict(claims)

    def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo of the token's holder, who must be the ID token's subject."""
        url = self.metadata().get("userinfo_endpoint")
        if not url:
            raise SignOnError("the provider has no userinfo endpoint")
        found = self._get(url, headers={"Authorization": f"Bearer {access_token}"})
        if found.get("sub") != subject:
            raise SignOnError("the userinfo is about someone else")
        return found


def _account_of(accounts: DeskAccounts, settings: DeskOidc, value: str) -> Account:
    if settings.match == "name":
        found = accounts.find(value)
        matches = [] if found is None else [found]
    else:
        matches = [a for a in accounts.accounts() if a.email and a.email == value.lower()]
    if len(matches) != 1:
        raise SignOnError(f"{len(matches)} desk accounts match the claim")
    account = matches[0]
    if account.disabled:
        raise SignOnError("the desk account is disabled")
    if account.locked_until is not None and account.locked_until > now_utc():
        raise SignOnError("the desk account is locked")
    return account


def add_sso_pages(kit: DeskKit, set_cookie: Callable[[Response, str], None]) -> None:
    """Add `/desk/sso/start` and `/desk/sso/callback` when `[desk_oidc] issuer` is set;
    `set_cookie` sets the desk's login cookie."""
    settings = kit.config.settings.desk_oidc
    if settings.issuer is None:
        return
    desk, page, _ = kit.blueprint, kit.page, kit.text
    accounts = kit.office.accounts
    provider = Provider(settings)
    signer = timed_signer(kit.office.store.secret, Purpose.DESK_SSO)
    lifetime = timedelta(minutes=kit.config.settings.desk.session_minutes)
    kit.shared["sso_label"] = settings.label

    def cookie() -> str:
        # Lax, not Strict: the provider's redirect back is a navigation from another site.
        return "comms-desk-sso" if local_request() else "__Host-comms-desk-sso"

    def path() -> str:
        return PREFIX + "/" if local_request() else "/"

    def redirect_uri() -> str:
        return request.url_root.rstrip("/") + PREFIX + "/sso/callback"

    def failed(reason: str, who: str = "") -> Response:
        log.warning("desk single sign-on failed: %s", reason)
        with bookkeeping():  # the provider's answer arrives as a GET (the guard's exception)
            accounts.audit(who[:200] or "?", "login-failed", detail=f"single sign-on: {reason}")
        message = _("The sign-on at the identity provider did not work.")
        response = page("login.html.j2", 401, error=message)
        response.delete_cookie(cookie(), path=path(), secure=not local_request(), httponly=True)
        return response

    @desk.route("/sso/start", methods=["GET", "HEAD"])
    def start() -> Response:
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        try:
            endpoint = provider.metadata()["authorization_endpoint"]
        except (SignOnError, KeyError) as exc:
            return failed(str(exc))
        url, _state = provider.client(redirect_uri()).create_authorization_url(
            endpoint, state=state, code_verifier=verifier, nonce=nonce
        )
        response = Response(status=303, headers={"Location": url})
        # Base64 so that the cookie's value needs no quoting.
        flow = base64.urlsafe_b64encode(
            json.dumps({"state": state, "nonce": nonce, "verifier": verifier}).encode()
        )
        response.set_cookie(
            cookie(),
            signer.sign(flow).decode(),
            max_age=FLOW_SECONDS,
            path=path(),
            secure=not local_request(),
            httponly=True,
            samesite="Lax",
        )
        return response

    def flow() -> dict[str, str]:
        try:
            signed = request.cookies.get(cookie(), "")
            found = json.loads(base64.urlsafe_b64decode(signer.unsign(signed, FLOW_SECONDS)))
        except (BadSignature, ValueError, TypeError):
            raise SignOnError("no sign-on was started here, or it took too long") from None
        sent = request.args.get("state", "")
        if not hmac.compare_digest(str(found.get("state", "")).encode(), sent.encode()):
            raise SignOnError("the state does not match")
        return {key: str(found[key]) for key in ("nonce", "verifier")}

    @desk.route("/sso/callback", methods=["GET", "HEAD"])
    def callback() -> Response:
        value = ""
        try:
            started = flow()
            if "error" in request.args:
                raise SignOnError(f"the provider said {request.args['error'][:100]!r}")
            client = provider.client(redirect_uri())
            metadata = provider.metadata()
            try:
                token = client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=request.args.get("code", ""),
                    code_verifier=started["verifier"],
                )
            except Exception as exc:  # Authlib's OAuth errors and requests' alike
                raise SignOnError(f"the code was not accepted: {exc}") from None
            claims = provider.id_token(dict(token), started["nonce"])
            if settings.claim not in claims:
                userinfo = provider.userinfo(str(token["access_token"]), str(claims["sub"]))
                claims = userinfo | claims
            value = str(claims.get(settings.claim) or "")
            if not value:
                raise SignOnError(f"no claim {settings.claim!r}")
            if settings.claim == "email" and claims.get("email_verified") is not True:
                raise SignOnError("the address is not verified at the provider")
            account = _account_of(accounts, settings, value)
        except SignOnError as exc:
            return failed(str(exc), value)
        # A page, not a redirect: the login cookie is SameSite=Strict, and a browser does not
        # send it on a redirect that a navigation from the provider's site started.
        old = login_token()
        response = page("signed_on.html.j2")
        # The provider's answer arrives as a GET: the login it makes is the guard's named
        # exception (comms.audience.read_only.bookkeeping), after every check above.
        with bookkeeping():
            if old:  # a login (or half a one, waiting for its code) in this browser ends
                accounts.end(old)
            set_cookie(response, accounts.start(account, True, lifetime))
            detail = f"single sign-on from {request.remote_addr}"
            accounts.audit(account.name, "login", detail=detail)
        response.delete_cookie(cookie(), path=path(), secure=not local_request(), httponly=True)
        return response
