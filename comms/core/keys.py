"""How strong a secret key must be: the one rule for COMMS_SECRET_KEY and var/secret.key."""

from __future__ import annotations

import math

#: Entropy a secret key needs at least: 32 random bytes.
KEY_BITS = 256
_HEX = frozenset("0123456789abcdefABCDEF")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=")


def key_problem(key: str) -> str | None:
    """Why `key` is too weak to sign links, or None; a generous estimate of its entropy.

    Each character counts as a random pick from the smallest usual alphabet holding the key
    (hex 16, base64 64, printable 95), so 64 hex digits or `secrets.token_urlsafe(32)` pass.
    """
    chars = set(key)
    alphabet = 16 if chars <= _HEX else 64 if chars <= _BASE64 else 95
    if len(key) * math.log2(alphabet) < KEY_BITS or len(chars) < 12:
        return (
            "too weak: a secret key needs 32 random bytes (64 hex digits, 43 base64 characters), "
            "e.g. from python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return None
