"""Keyed hashes of the secret key: what is mailed or stored stays the same byte for byte.

The vectors were computed with the code before the one key derivation (comms.core.keys)
existed. Unsubscribe links, VERP addresses and CSRF forms are out in the world; suppression
entries of erased people exist only as these hashes; the database's secret check was written
when it was set up. A changed label or construction would break them all, so each is pinned.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from itsdangerous import Signer

from comms.core import keys
from comms.core.keys import SIGNING, Purpose, derive, keyed_hash
from comms.db.engine import make_engine, resolve_secret, upgrade
from comms.db.shared import Hits
from comms.db.store import Store
from comms.db.tables import meta
from comms.mail import tokens
from comms.mail.tokens import PURPOSES, make_token, read_link
from comms.mail.verp import read_verp, verp_address
from comms.web.guard import CsrfGuard

from .databases import Databases

SECRET = "vector-key-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
#: When the timed vectors were signed (their timestamp is part of the token).
SIGNED_AT = datetime(2020, 1, 15, 9, 30, tzinfo=UTC)
UID = "Ab3_x-9"

TOKENS = [
    ("unsubscribe", 0, "", "Ab3_x-9.w3odaJHSM732kDT501y3I1I7Aiw"),
    ("preferences", 0, "", "Ab3_x-9.QtRQxSOl4Ye4dssrJ68iXmW8uy0"),
    ("preferences", 4, "", "Ab3_x-9.v4.myTAav9KpsTIERMb1E60Nt1iMBE"),
    ("confirm", 0, "", "Ab3_x-9.Xh7bmA.MWQLYQyO2De-TCCVTqh_iV67iFU"),
    ("export", 2, "n0nce", "Ab3_x-9.v2.n0nce.Xh7bmA.NpM6ogS8d-XsV5FNT6QGPlYvcFY"),
    ("erase", 2, "n0nce", "Ab3_x-9.v2.n0nce.Xh7bmA.xUyJ66Pm9oVFgjpvZR3SdfNXxfc"),
]


@pytest.mark.parametrize(("purpose", "version", "nonce", "token"), TOKENS)
def test_link_tokens_are_the_ones_already_mailed(
    purpose: str, version: int, nonce: str, token: str
) -> None:
    with time_machine.travel(SIGNED_AT, tick=False):
        assert make_token(SECRET, purpose, UID, version, nonce) == token
        link = read_link(SECRET, purpose, token, max_age=60)
    assert (link.uid, link.version, link.nonce) == (UID, version, nonce)


def test_a_csrf_token_of_an_open_form_still_passes() -> None:
    token = "prefs:Ab3_x-9:QnY3Fl-xXlg.Xh7bmA.2GhQfTvEBPSAzjN9ZNadgU5cDAg"
    with time_machine.travel(SIGNED_AT, tick=False):
        assert CsrfGuard(SECRET).check("prefs:Ab3_x-9", token)
        assert not CsrfGuard(SECRET).check("prefs:other", token)
        assert not CsrfGuard(SECRET + "x").check("prefs:Ab3_x-9", token)


def test_verp_addresses_are_the_ones_already_mailed() -> None:
    address = "bounces+12345-6e423d6c15943143@example.org"
    assert verp_address(SECRET, 12345, "bounces", "example.org") == address
    found = read_verp(SECRET, address.upper(), "bounces")
    assert found is not None and found.valid and found.delivery_id == 12345


#: Hashing needs no connection: an engine that is never connected will do.
UNUSED = sa.create_engine("sqlite://")


@pytest.mark.parametrize(
    ("email", "key"),
    [
        (
            "max.mustermann@example.org",
            "09dce119f9e374d34a593d6e0fec613507b7ca32c6b2e4cbf9c8f9f48739717c",
        ),
        (
            "jürgen@bücher.example",
            "c31f470aed21d5d8e3a7716f158c41bfa27371bc531d694ed8e791e4bdc4ccbd",
        ),
    ],
)
def test_suppression_keys_match_the_stored_ones(email: str, key: str) -> None:
    assert Store(UNUSED, SECRET).key(email) == key


def test_rate_keys_match_the_stored_ones() -> None:
    hits = Hits(UNUSED, SECRET)
    assert hits.key(Purpose.SIGNUP_RATE, "203.0.113.7") == "73e509169a08dd5384c4c4c3a48be903"
    key = hits.key(Purpose.CONFIRM_MAIL_RATE, "max.mustermann@example.org")
    assert key == "eec4e338e196193eece05ebec553739b"


@pytest.mark.database
def test_the_secret_check_matches_the_stored_one(database: Databases, tmp_path: Path) -> None:
    engine = make_engine(database.fresh())
    upgrade(engine)
    resolve_secret(engine, SECRET, tmp_path / "secret.key")
    with engine.connect() as conn:
        check = conn.execute(sa.select(meta.c.value).where(meta.c.key == "secret_check"))
        assert check.scalar() == "b6f1bf2e02acb62c"
    # A database set up with this key opens with it again.
    assert resolve_secret(engine, SECRET, tmp_path / "secret.key") == (SECRET, False)


HASHED = [purpose for purpose in Purpose if purpose not in SIGNING]
#: The keyed hashes written as label, NUL, data (the others are from before labels).
LABELLED = [p for p in HASHED if p not in (Purpose.SUPPRESSION, Purpose.SECRET_CHECK)]


def test_no_two_signing_purposes_share_a_key() -> None:
    keys = {derive(SECRET, purpose) for purpose in SIGNING}
    assert len(keys) == len(SIGNING)
    assert SECRET.encode() not in keys  # the key of the keyed hashes


def test_every_link_signs_with_a_key_of_its_own() -> None:
    used = [kind.key for kind in PURPOSES.values()]
    assert len(set(used)) == len(used) and set(used) < SIGNING
    # The label is the salt the tokens mailed so far were signed with.
    assert all(kind.key.value == f"comms.{name}" for name, kind in PURPOSES.items())


def test_no_two_keyed_hashes_hash_the_same_bytes() -> None:
    """Label, NUL, data: the label is what comes before the first NUL, so distinct labels
    without NUL never meet; the two older hashes hold no NUL, and differ from each other."""
    labels = [purpose.value for purpose in LABELLED]
    assert len(set(labels)) == len(labels)
    assert all(label and "\0" not in label for label in labels)
    assert "\0" not in Purpose.SECRET_CHECK.value
    for data in ("verp\x001", "signup-ip\x00203.0.113.7", Purpose.SECRET_CHECK.value):
        with pytest.raises(ValueError, match="is no address"):
            keyed_hash(SECRET, Purpose.SUPPRESSION, data)
    with pytest.raises(ValueError, match="label alone"):
        keyed_hash(SECRET, Purpose.SECRET_CHECK, "x")


#: Any data, and data that spells another purpose's message.
SAMPLES = ["", "1", "max@example.org", Purpose.SECRET_CHECK.value] + [
    f"{purpose.value}{tail}" for purpose in HASHED for tail in ("", "1", "\0", "\x001", "\0\0")
]


def test_two_purposes_never_give_the_same_hash() -> None:
    seen: dict[str, tuple[Purpose, str]] = {}
    for purpose in HASHED:
        for data in SAMPLES:
            try:
                digest = keyed_hash(SECRET, purpose, data)
            except ValueError:
                continue  # refused: see above
            assert seen.setdefault(digest, (purpose, data)) == (purpose, data)


@pytest.mark.parametrize("purpose", list(Purpose), ids=lambda p: p.name)
def test_each_purpose_is_one_kind(purpose: Purpose) -> None:
    """A signing key is never used as a keyed hash, nor the other way round."""
    with pytest.raises(ValueError, match="keyed_hash" if purpose in HASHED else "use signer"):
        derive(SECRET, purpose) if purpose in HASHED else keyed_hash(SECRET, purpose, "x")


def test_keys_are_prepared_once_and_sign_as_itsdangerous_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two signed links per message: keying the HMAC anew for each was 40 % of a message's CPU."""
    secret = "prepared-" + "k" * 40
    tokens.make_token(secret, "unsubscribe", "u1")
    keys.keyed_hash(secret, keys.Purpose.VERP, "1")
    made: list[object] = []
    real = hmac.new

    def counting(*args: Any, **kwargs: Any) -> hmac.HMAC:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(hmac, "new", counting)
    signed = [tokens.make_token(secret, "unsubscribe", f"u{n}") for n in range(10)]
    hashes = [keys.keyed_hash(secret, keys.Purpose.VERP, str(n)) for n in range(10)]
    assert made == []
    monkeypatch.setattr(hmac, "new", real)
    plain = Signer(keys.derive(secret, keys.Purpose.UNSUBSCRIBE_LINK), key_derivation="none")
    assert signed == [plain.sign(f"u{n}").decode() for n in range(10)]
    assert hashes == [
        real(secret.encode(), f"verp\0{n}".encode(), hashlib.sha256).hexdigest() for n in range(10)
    ]


_SIGNING = sorted(SIGNING, key=lambda p: p.name)


@pytest.mark.parametrize("purpose", _SIGNING, ids=[p.name for p in _SIGNING])
def test_sign_makes_the_signers_bytes(purpose: Purpose) -> None:
    """The mailed links' short path signs exactly as the itsdangerous signer reads them."""
    values = ["", "u", "u1.v2", "x" * 57, "y" * 200]
    for value in values:
        signed = keys.sign(SECRET, purpose, value)
        assert signed == keys.signer(SECRET, purpose).sign(value).decode("ascii")
        assert keys.signer(SECRET, purpose).unsign(signed).decode("ascii") == value
