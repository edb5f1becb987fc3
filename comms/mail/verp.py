"""VERP envelope senders: `bounces+<delivery id>-<signature>@<bounce domain>`, made and read.

Every delivery gets its own envelope sender, so a bounce names its delivery even when the DSN
itself is mangled. The signature (an HMAC of the delivery id with the secret key) makes a
forged bounce for somebody else's delivery fail the check instead of suppressing that person.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from comms.core.keys import Purpose, keyed_hash

#: Hex digits of the signature: 64 bits, short enough for a 64-character local part.
_SIG_LENGTH = 16


def _signature(secret: str, delivery_id: int) -> str:
    return keyed_hash(secret, Purpose.VERP, str(delivery_id))[:_SIG_LENGTH]


def verp_address(secret: str, delivery_id: int, local_part: str, domain: str) -> str:
    """The envelope sender of one delivery: `<local_part>+<id>-<signature>@<domain>`."""
    return f"{local_part}+{delivery_id}-{_signature(secret, delivery_id)}@{domain}"


@dataclass(frozen=True)
class Verp:
    """A VERP address of ours found in a report: the delivery it names and whether it is genuine."""

    delivery_id: int
    valid: bool


def read_verp(secret: str, address: str, local_part: str) -> Verp | None:
    """The delivery a VERP address names (None: not one of our VERP addresses at all).

    Relays may change the case of a local part; the signature is hex, so it is compared
    case-insensitively.
    """
    pattern = rf"{re.escape(local_part)}\+(\d{{1,18}})-([0-9a-f]+)@[^@\s]+"
    found = re.fullmatch(pattern, address.strip().strip("<>"), flags=re.IGNORECASE)
    if found is None:
        return None
    delivery_id = int(found.group(1))
    expected = _signature(secret, delivery_id)
    return Verp(delivery_id, hmac.compare_digest(found.group(2).lower(), expected))
