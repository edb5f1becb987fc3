"""Limits on sign-ups and confirmation mails, counted in the database by every server process."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import sqlalchemy as sa

from comms.core.addresses import mailbox
from comms.core.clock import epoch
from comms.core.errors import CommsError
from comms.core.keys import Purpose
from comms.db.shared import Hits
from comms.db.store import Store

#: Confirmation mails one mailbox may be sent per hour, whoever asks (against mail bombing):
#: sign-ups and requests for a new confirmation mail alike, counted per `mailbox()`.
MAILS_PER_ADDRESS = 3
#: IPv6 clients are counted per /64: one host usually gets a whole /64 to choose from.
IPV6_PREFIX = 64


#: What a database that does not answer raises (a lost connection, a file that cannot be
#: opened, a pool that waited too long).
DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


class Unavailable(CommsError):
    """The database does not answer: nothing was counted (ask again in a minute)."""


def client_bucket(ip: str) -> str:
    """What the per-client limit counts: an IPv4 address as it is, an IPv6 address by its /64
    (an IPv4-mapped one as its IPv4 address)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


class SharedLimit:
    """At most `limit` hits per value within `window` seconds (a sliding window).

    Counted in the database, so two `comms serve` behind one load balancer allow the limit once
    in total and a restart forgets nothing; what is stored is an HMAC of the value (a client
    bucket or a mailbox), and it is deleted once its window has passed.
    """

    def __init__(
        self,
        store: Store,
        scope: Purpose,
        limit: int,
        window: float,
        clock: Callable[[], float] = epoch,
        bucket: Callable[[str], str] = str,
    ) -> None:
        self.hits = Hits(store.engine, store.secret)
        self.scope, self.limit, self.window = scope, limit, window
        self._clock = clock
        self._bucket = bucket

    def hit(self, value: str) -> float:
        """Count one hit; 0 when allowed, else the seconds until the next one is allowed.

        Unavailable when the database does not answer (the web asks here first, so a
        request that would be lost gets "try again in a minute" instead)."""
        key = self._bucket(value)
        try:
            return self.hits.hit(self.scope, key, self.limit, self.window, self._clock())
        except DATABASE_DOWN as exc:
            raise Unavailable(f"the database does not answer: {type(exc).__name__}") from None


def client_limit(store: Store, per_client: int, window: float) -> SharedLimit:
    """Sign-ups and new-mail requests per client (`subscribe.rate_limit` per
    `subscribe.rate_window`), an IPv6 client counted by its /64."""
    return SharedLimit(store, Purpose.SIGNUP_RATE, per_client, window, bucket=client_bucket)


def mail_limit(store: Store) -> SharedLimit:
    """Confirmation mails per mailbox: MAILS_PER_ADDRESS an hour, `+tags`, case and (where the
    domain ignores them) dots folded by `comms.core.addresses.mailbox`."""
    return SharedLimit(store, Purpose.CONFIRM_MAIL_RATE, MAILS_PER_ADDRESS, 3600, bucket=mailbox)


def signup_limits(store: Store, per_ip: int, window: float) -> tuple[SharedLimit, SharedLimit]:
    """The sign-up limit per client and the confirmation-mail limit per mailbox."""
    return client_limit(store, per_ip, window), mail_limit(store)
