"""Form protection for the web pages: signed CSRF tokens and a per-IP sliding-window limit."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

#: How long a form may stay open before its CSRF token expires (seconds).
CSRF_MAX_AGE = 4 * 3600


class CsrfGuard:
    """Stateless CSRF tokens: a random nonce signed with the secret and a purpose, time-limited.

    No cookie is needed: the token proves that the form came from this server recently and for
    this purpose (e.g. one subscriber's preferences), which is what a cross-site form cannot.
    """

    def __init__(self, secret: str, max_age: int = CSRF_MAX_AGE) -> None:
        self._signer = TimestampSigner(secret, salt="comms.csrf")
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


class RateLimiter:
    """At most `limit` hits per key within `window` seconds (sliding window, in memory).

    The state lives in this process: several server processes each keep their own count.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Count one hit; 0 when allowed, else the seconds until the next one is allowed."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 1.0)
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)
            return 0.0

    def _forget_idle(self, now: float) -> None:
        # Keep memory flat under many distinct clients: drop keys with no hit in the window.
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
