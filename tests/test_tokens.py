"""Signed tokens: round trip, purpose separation, forgery and expiry."""

from __future__ import annotations

import pytest

from comms.core.errors import BadToken
from comms.mail.tokens import PERMANENT, Link, make_token, read_link, read_token


def test_round_trip_and_short() -> None:
    token = make_token("s3cret", "unsubscribe", "a1B2-c_3")
    assert read_token("s3cret", "unsubscribe", token) == "a1B2-c_3"
    assert token == make_token("s3cret", "unsubscribe", "a1B2-c_3")  # stable: no timestamp
    assert len(token) <= len("a1B2-c_3") + 28
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize(
    ("secret", "purpose", "mangle"),
    [
        ("other", "unsubscribe", lambda t: t),
        ("s3cret", "preferences", lambda t: t),
        ("s3cret", "unsubscribe", lambda t: "43" + t[2:]),
        ("s3cret", "unsubscribe", lambda t: t[:-1] + ("A" if t[-1] != "A" else "B")),
        ("s3cret", "unsubscribe", lambda t: "garbage"),
    ],
)
def test_forged_or_misused_tokens_are_refused(secret: str, purpose: str, mangle: object) -> None:
    token = make_token("s3cret", "unsubscribe", "42")
    with pytest.raises(BadToken, match="^the link is invalid$"):
        read_token(secret, purpose, mangle(token))  # type: ignore[operator]


def test_confirm_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_600_000_000.0]
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: clock[0])
    token = make_token("s3cret", "confirm", "42")
    clock[0] += 3600
    assert read_token("s3cret", "confirm", token, max_age=7200) == "42"
    assert read_token("s3cret", "confirm", token) == "42"
    clock[0] += 7200
    with pytest.raises(BadToken, match="^the link has expired$"):
        read_token("s3cret", "confirm", token, max_age=7200)


def test_unsafe_uids_and_missing_secret() -> None:
    with pytest.raises(ValueError, match="not URL-safe"):
        make_token("s", "unsubscribe", "a/b")
    with pytest.raises(ValueError, match="COMMS_SECRET_KEY"):
        make_token("", "unsubscribe", "a")


def test_each_purpose_carries_what_fits() -> None:
    # Preferences: permanent, versioned; version 0 is the form of links sent before versions.
    legacy = make_token("s3cret", "preferences", "u1")
    assert read_link("s3cret", "preferences", legacy) == Link("u1", 0)
    assert read_link("s3cret", "preferences", make_token("s3cret", "preferences", "u1", 3)) == (
        Link("u1", 3)
    )
    # Export and erasure: timed, versioned, with the nonce of their single-use record.
    data = make_token("s3cret", "export", "u1", 2, "n0nce")
    assert read_link("s3cret", "export", data, max_age=60) == Link("u1", 2, "n0nce")
    for other in ("erase", "preferences", "unsubscribe", "confirm"):
        with pytest.raises(BadToken):
            read_link("s3cret", other, data)
    with pytest.raises(ValueError, match="not URL-safe"):
        make_token("s3cret", "erase", "u1", 0, "a.b")
    with pytest.raises(ValueError, match="unknown token purpose"):
        make_token("s3cret", "everything", "u1")
    assert PERMANENT == {"unsubscribe", "preferences"}


def test_the_unsubscribe_token_carries_no_version() -> None:
    # It must work forever, whatever happens to the person's other links.
    assert make_token("s3cret", "unsubscribe", "u1", 5) == make_token("s3cret", "unsubscribe", "u1")
