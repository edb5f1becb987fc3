"""Desk account secrets: argon2 password hashes and TOTP second factors (RFC 6238)."""

from __future__ import annotations

import functools
import secrets

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Compared against when the name is unknown, so that a wrong name costs as long as a
    wrong password (the answer time does not tell which names exist). Made on first use: an
    argon2 hash at import cost every command a third of a second."""
    return _HASHER.hash(secrets.token_urlsafe(16))


#: TOTP codes one step before or after now are accepted (clocks drift, people type slowly).
TOTP_WINDOW = 1


def new_password() -> str:
    """A random password for a new or reset account (shown once)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    """The argon2id hash of `password`, with its own salt and parameters."""
    return _HASHER.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash (None: an unknown account, never matches,
    but takes as long)."""
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret."""
    return pyotp.random_base32()


def totp_uri(secret: str, name: str, issuer: str) -> str:
    """The provisioning URI an authenticator app reads (as a QR code or typed in)."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def totp_step(secret: str, code: str, after: int | None, at: float) -> int | None:
    """The time step whose code `code` is (within TOTP_WINDOW of `at`, epoch seconds), or None.
    A step at or before `after` (the last one used) is refused: a code works once."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = int(at // totp.interval)
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if after is not None and step <= after:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None
