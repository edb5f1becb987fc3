"""Desk account secrets: argon2 password hashes and TOTP second factors (RFC 6238)."""

from __future__ import annotations

import base64
import functools
import secrets
from typing import TYPE_CHECKING

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from comms.core.keys import Purpose, keyed_hash

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_HASHER = PasswordHasher()
#: TOTP codes one step before or after now are accepted (clocks drift, people type slowly).
TOTP_WINDOW = 1


@functools.cache
def _dummy() -> str:
    """Compared against when the name is unknown, so that a wrong name costs as long as a wrong
    password (the answer time does not tell which names exist). Made on first use, not at
    import: an argon2 hash costs half a second that every command would pay at start-up."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def new_password() -> str:
    """A random password for a new or reset account (shown once)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    """The argon2id hash of `password`, with its own salt and parameters."""
    return _HASHER.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash (None: an unknown account, never matches,
    but takes as long)."""
    # Asked on every call, known name or not: the first call costs the same either way.
    dummy = _dummy()
    try:
        return _HASHER.verify(stored or dummy, password) and stored is not None
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


#: A sealed TOTP secret starts with this (an older row holds the secret itself).
SEALED = "v1:"
_SEAL_CONTEXT = b"comms desk totp secret"


def _seal_key(secret_key: str) -> AESGCM:
    # Imported here: only a desk login or a new account needs it, not every command.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(bytes.fromhex(keyed_hash(secret_key, Purpose.DESK_TOTP_SEAL)))


def seal_totp(secret_key: str, totp_secret: str) -> str:
    """`totp_secret` as the database keeps it: AES-GCM under a key derived from the secret
    key, so a copy of the database alone (a backup, a dump) does not give the second factor."""
    nonce = secrets.token_bytes(12)
    sealed = _seal_key(secret_key).encrypt(nonce, totp_secret.encode(), _SEAL_CONTEXT)
    return SEALED + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_totp(secret_key: str, stored: str) -> str | None:
    """The TOTP secret of a stored value (sealed, or plain from before sealing); None when it
    cannot be opened (another secret key, a damaged value)."""
    from cryptography.exceptions import InvalidTag

    if not stored.startswith(SEALED):
        return stored
    try:
        data = base64.urlsafe_b64decode(stored.removeprefix(SEALED))
        return _seal_key(secret_key).decrypt(data[:12], data[12:], _SEAL_CONTEXT).decode()
    except (ValueError, InvalidTag):
        return None
