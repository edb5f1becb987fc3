"""Signed, URL-safe tokens for unsubscribe, preferences and confirmation links (itsdangerous)."""

from __future__ import annotations

import re
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from comms.core.errors import BadToken, ExpiredToken

#: Purposes whose tokens never expire: a link in a mail must work as long as the mail exists.
PERMANENT = frozenset({"unsubscribe", "preferences"})
_SAFE_UID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@lru_cache(maxsize=64)
def _signer(secret: str, purpose: str) -> Signer:
    # The purpose is the salt: a token made for one purpose never passes as another.
    cls = Signer if purpose in PERMANENT else TimestampSigner
    return cls(secret, salt=f"comms.{purpose}")


def make_token(secret: str, purpose: str, uid: str) -> str:
    """A URL-safe token that proves `uid` for `purpose`; `confirm` & co. carry a timestamp."""
    if not secret:
        raise ValueError("a token needs a secret key (COMMS_SECRET_KEY)")
    if not _SAFE_UID.fullmatch(uid):
        raise ValueError(f"uid {uid!r} is not URL-safe (A-Z, a-z, 0-9, '_', '-'; ≤ 128)")
    return _signer(secret, purpose).sign(uid).decode("ascii")


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> str:
    """The uid inside `token`; BadToken when forged, of another purpose or older than max_age."""
    signer = _signer(secret, purpose)
    try:
        if isinstance(signer, TimestampSigner):
            value = signer.unsign(token, max_age=max_age)
        else:
            value = signer.unsign(token)
    except SignatureExpired:
        raise ExpiredToken("the link has expired") from None
    except BadSignature:
        raise BadToken("the link is invalid") from None
    uid = value.decode("ascii", errors="replace")
    if not _SAFE_UID.fullmatch(uid):
        raise BadToken("the link is invalid")
    return uid
