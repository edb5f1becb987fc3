"""Limits on sign-ups and confirmation mails, counted in the database by every server process."""

from __future__ import annotations

from collections.abc import Callable

from comms.core.clock import epoch
from comms.core.keys import Purpose
from comms.db.shared import Hits
from comms.db.store import Store

#: Confirmation mails one address may be sent per hour, whoever asks (against mail bombing).
MAILS_PER_ADDRESS = 3


class SharedLimit:
    """At most `limit` hits per value within `window` seconds (a sliding window).

    Counted in the database, so two `comms serve` behind one load balancer allow the limit once
    in total and a restart forgets nothing; what is stored is an HMAC of the IP or address, and
    it is deleted once its window has passed.
    """

    def __init__(
        self,
        store: Store,
        scope: Purpose,
        limit: int,
        window: float,
        clock: Callable[[], float] = epoch,
    ) -> None:
        self.hits = Hits(store.engine, store.secret)
        self.scope, self.limit, self.window = scope, limit, window
        self._clock = clock

    def hit(self, value: str) -> float:
        """Count one hit; 0 when allowed, else the seconds until the next one is allowed."""
        return self.hits.hit(self.scope, value, self.limit, self.window, self._clock())


def signup_limits(store: Store, per_ip: int, window: float) -> tuple[SharedLimit, SharedLimit]:
    """The sign-up limit per IP (`subscribe.rate_limit` per `subscribe.rate_window`) and the
    confirmation-mail limit per address (MAILS_PER_ADDRESS an hour)."""
    return (
        SharedLimit(store, Purpose.SIGNUP_RATE, per_ip, window),
        SharedLimit(store, Purpose.CONFIRM_MAIL_RATE, MAILS_PER_ADDRESS, 3600),
    )
