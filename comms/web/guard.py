"""Form protection for the web pages: signed CSRF tokens (rate limits: comms.audience.limits)."""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, SignatureExpired

from comms.core.keys import Purpose, timed_signer

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
