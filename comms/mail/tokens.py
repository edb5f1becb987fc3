"""Signed, URL-safe link tokens (itsdangerous): each carries its purpose, and where it fits a
timestamp (expiry), the person's key version (revocation) and a single-use nonce."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from comms.core import keys
from comms.core.errors import BadToken, ExpiredToken


@dataclass(frozen=True)
class LinkKind:
    """What a link may do decides what its token carries."""

    #: Whose key signs it: a token made for one purpose never passes as another.
    key: keys.Purpose
    #: A timestamp: the reader passes the lifetime (`max_age`).
    timed: bool
    #: The person's key version: raising it ("log out all links") revokes every such link.
    versioned: bool
    #: A nonce naming a single-use record in the database.
    single_use: bool = False


#: Every purpose. The one-click unsubscribe never expires and is never revoked: all it can do
#: is stop mail, and it must work as long as the mail exists (RFC 8058, docs/requirements.md
#: E7). The footer's preferences link never expires either but can be revoked. Export and
#: erasure links are mailed on request, short-lived and single-use.
PURPOSES = {
    "unsubscribe": LinkKind(keys.Purpose.UNSUBSCRIBE_LINK, timed=False, versioned=False),
    "preferences": LinkKind(keys.Purpose.PREFERENCES_LINK, timed=False, versioned=True),
    "confirm": LinkKind(keys.Purpose.CONFIRM_LINK, timed=True, versioned=False),
    "export": LinkKind(keys.Purpose.EXPORT_LINK, timed=True, versioned=True, single_use=True),
    "erase": LinkKind(keys.Purpose.ERASE_LINK, timed=True, versioned=True, single_use=True),
}
#: Purposes whose tokens never expire: a link in a mail must work as long as the mail exists.
PERMANENT = frozenset(name for name, p in PURPOSES.items() if not p.timed)
_SAFE_UID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_VERSION = re.compile(r"v([0-9]{1,9})")


@dataclass(frozen=True)
class Link:
    """What a genuine token says."""

    uid: str
    #: The key version it was made with; links from before versions existed read as 0.
    version: int = 0
    #: The single-use nonce (export, erase), else "".
    nonce: str = ""


def _purpose(name: str) -> LinkKind:
    try:
        return PURPOSES[name]
    except KeyError:
        raise ValueError(f"unknown token purpose {name!r}") from None


@lru_cache(maxsize=64)
def _signer(secret: str, purpose: str) -> Signer:
    kind = _purpose(purpose)
    return (keys.timed_signer if kind.timed else keys.signer)(secret, kind.key)


def make_token(secret: str, purpose: str, uid: str, version: int = 0, nonce: str = "") -> str:
    """A URL-safe token that proves `uid` for `purpose`; timed purposes carry a timestamp."""
    kind = _purpose(purpose)
    if not secret:
        raise ValueError("a token needs a secret key (COMMS_SECRET_KEY)")
    for value in (uid, nonce) if kind.single_use else (uid,):
        if not _SAFE_UID.fullmatch(value):
            raise ValueError(f"{value!r} is not URL-safe (A-Z, a-z, 0-9, '_', '-'; ≤ 128)")
    parts = [uid]
    # Version 0 is left out, so a preferences link made before versions existed is the same.
    if kind.versioned and (version or kind.single_use):
        parts.append(f"v{version}")
    if kind.single_use:
        parts.append(nonce)
    if not kind.timed:  # the links in every message: the same bytes in fewer steps
        return keys.sign(secret, kind.key, ".".join(parts))
    return _signer(secret, purpose).sign(".".join(parts)).decode("ascii")


def read_link(secret: str, purpose: str, token: str, max_age: int | None = None) -> Link:
    """What `token` says; BadToken when forged, of another purpose or older than max_age."""
    kind = _purpose(purpose)
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
    parts = value.decode("ascii", errors="replace").split(".")
    uid, version, nonce = parts[0], 0, ""
    if kind.single_use and len(parts) == 3:
        found, nonce = _VERSION.fullmatch(parts[1]), parts[2]
    elif kind.versioned and len(parts) == 2:
        found = _VERSION.fullmatch(parts[1])
    else:
        found = _VERSION.fullmatch("v0") if len(parts) == 1 and not kind.single_use else None
    if found is None or not _SAFE_UID.fullmatch(uid):
        raise BadToken("the link is invalid")
    version = int(found.group(1))
    return Link(uid, version, nonce)


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> str:
    """The uid inside `token`; BadToken when forged, of another purpose or older than max_age."""
    return read_link(secret, purpose, token, max_age).uid
