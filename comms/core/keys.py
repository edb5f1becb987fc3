"""The secret key: how strong it must be, and every key and keyed hash made from it.

Every use of the secret (signed links, CSRF forms, VERP signatures, Message-IDs, suppression
and rate keys, the database's secret check) is a `Purpose` here, and only this module hashes
with the secret. MIME boundaries are hashes of public names with no key: they reveal nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
from enum import Enum

from itsdangerous import Signer, TimestampSigner
from itsdangerous.signer import SigningAlgorithm

#: Entropy a secret key needs at least: 32 random bytes.
KEY_BITS = 256
#: What a random key may lose to the patterns it shows by chance: at most 5 of 100,000
#: `token_hex(32)` keys have 4 patterned digits (16 bits), none of them 9 (36 bits).
CHANCE_BITS = 32
_HEX = frozenset("0123456789abcdefABCDEF")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=")
_ADVICE = "e.g. from python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def key_problem(key: str) -> str | None:
    """Why `key` is too weak to sign links, or None; a generous estimate of its entropy.

    Each character counts as a random pick from the smallest usual alphabet holding the key
    (hex 16, base64 64, printable 95), so 64 hex digits or `secrets.token_urlsafe(32)` pass.
    A character that continues a pattern (`patterned`) counts for nothing: what is left must
    reach the bar too, less the margin a random key needs for its chance patterns.
    """
    chars = set(key)
    alphabet = 16 if chars <= _HEX else 64 if chars <= _BASE64 else 95
    bits = math.log2(alphabet)
    needs = "too weak: a secret key needs 32 random bytes (64 hex digits, 43 base64 characters)"
    if len(key) * bits < KEY_BITS or len(chars) < 12:
        return f"{needs}, {_ADVICE}"
    if (len(key) - patterned(key)) * bits < KEY_BITS - CHANCE_BITS:
        return f"{needs}, and this one repeats itself or runs through the alphabet; {_ADVICE}"
    return None


def patterned(key: str) -> int:
    """How many characters of `key` continue a pattern: the fourth and later of a run with
    equal steps (`aaaa`, `abcd`, `2468`, `zyxw`) or of four characters seen before in it."""
    count = 0
    for i in range(3, len(key)):
        steps = {ord(key[j]) - ord(key[j - 1]) for j in range(i - 2, i + 1)}
        if len(steps) == 1 or key[i - 3 : i + 1] in key[:i]:
            count += 1
    return count


class Purpose(Enum):
    """Every use of the secret key, each under its own label.

    A label is never changed or reused: links and VERP addresses made with it are out in the
    world, and the suppression entries of erased people exist only as its hashes.
    """

    _value_: str

    # Signed tokens (itsdangerous): each signs with a key of its own, `derive`d from its label.
    UNSUBSCRIBE_LINK = "comms.unsubscribe"
    PREFERENCES_LINK = "comms.preferences"
    CONFIRM_LINK = "comms.confirm"
    EXPORT_LINK = "comms.export"
    ERASE_LINK = "comms.erase"
    CSRF_FORM = "comms.csrf"
    # The desk's single sign-on: state, nonce and PKCE verifier between redirect and callback.
    DESK_SSO = "comms.desk-sso"
    # Keyed hashes (`keyed_hash`): HMAC-SHA256 with the secret of the label, NUL, the data.
    VERP = "verp"
    # A newsletter's Message-ID: a bounce report quoting one proves it saw the mail's headers.
    MESSAGE_ID = "message-id"
    SIGNUP_RATE = "signup-ip"
    CONFIRM_MAIL_RATE = "confirm-mail"
    CLICK_LINK = "click-link"
    DESK_LOGIN_RATE = "desk-login"
    # The key that seals the desk's TOTP secrets in the database (AES-GCM).
    DESK_TOTP_SEAL = "desk-totp-seal"
    # Keyed hashes from before labels, kept as they were: the address alone, the label alone.
    SUPPRESSION = ""
    SECRET_CHECK = "comms secret check"


#: The purposes that sign tokens; the others are keyed hashes.
SIGNING = frozenset(
    {
        Purpose.UNSUBSCRIBE_LINK,
        Purpose.PREFERENCES_LINK,
        Purpose.CONFIRM_LINK,
        Purpose.EXPORT_LINK,
        Purpose.ERASE_LINK,
        Purpose.CSRF_FORM,
        Purpose.DESK_SSO,
    }
)


@functools.lru_cache(maxsize=64)
def derive(secret: str, purpose: Purpose) -> bytes:
    """The signing key of a token purpose, from the secret and the purpose's label.

    SHA-1 of label, "signer" and secret: itsdangerous's default derivation with the label as
    its salt, which made every token mailed so far.
    """
    if purpose not in SIGNING:
        raise ValueError(f"{purpose.name} is a keyed hash, not a signing key: use keyed_hash")
    material = purpose.value.encode() + b"signer" + secret.encode()
    return hashlib.sha1(material).digest()


def signer(secret: str, purpose: Purpose) -> Signer:
    """The signer of a token purpose whose tokens never expire."""
    key = derive(secret, purpose)
    return Signer(key, key_derivation="none", algorithm=_PreparedHMAC())


def sign(secret: str, purpose: Purpose, value: str) -> str:
    """`signer(secret, purpose).sign(value)` as text (value, ".", the URL-safe base64 of its
    HMAC-SHA1 without padding), in one HMAC call and without itsdangerous's layers: the two
    links mailed with every message are signed here."""
    mac = hmac.digest(derive(secret, purpose), value.encode(), "sha1")
    return f"{value}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode('ascii')}"


def timed_signer(secret: str, purpose: Purpose) -> TimestampSigner:
    """The signer of a token purpose whose tokens carry a timestamp, for expiry."""
    key = derive(secret, purpose)
    return TimestampSigner(key, key_derivation="none", algorithm=_PreparedHMAC())


@functools.lru_cache(maxsize=64)
def _prepared(key: bytes, digest: str) -> hmac.HMAC:
    """An HMAC with `key` and nothing hashed yet: copies of it skip the key schedule.

    Mailing two signed links per message, keying the HMAC again for each was about 40 % of
    the CPU of building a message (itsdangerous's SHA-1 also took Python's slow HMAC path).
    """
    return hmac.new(key, digestmod=digest)


class _PreparedHMAC(SigningAlgorithm):
    """itsdangerous's HMAC-SHA1 signature (the same bytes), from a prepared key."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        """HMAC-SHA1 of `value` under `key` (prepared once per key)."""
        mac = _prepared(key, "sha1").copy()
        mac.update(value)
        return mac.digest()


def _message(purpose: Purpose, data: str) -> bytes:
    """What is hashed: label, NUL, data; no two purposes ever hash the same bytes."""
    if purpose in SIGNING:
        raise ValueError(f"{purpose.name} signs tokens, it is no keyed hash: use signer")
    label = purpose.value
    if purpose is Purpose.SUPPRESSION:
        # An address holds no NUL, so it never reads as a labelled message, and is never the
        # check's label.
        if "\0" in data or data == Purpose.SECRET_CHECK.value:
            raise ValueError(f"{data!r} is no address to make a suppression key of")
        return data.encode()
    if purpose is Purpose.SECRET_CHECK:
        if data:
            raise ValueError("the secret check hashes its label alone")
        return label.encode()
    return f"{label}\0{data}".encode()


def keyed_hash(secret: str, purpose: Purpose, data: str = "") -> str:
    """The keyed hash (hex HMAC-SHA256 with the secret) of `data` for `purpose`."""
    mac = _prepared(secret.encode(), "sha256").copy()
    mac.update(_message(purpose, data))
    return mac.hexdigest()
