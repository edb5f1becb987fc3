"""Signed tokens: round trip, purpose separation, forgery and expiry."""

from __future__ import annotations

import pytest

from comms.core.errors import BadToken
from comms.mail.tokens import make_token, read_token


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
    import itsdangerous.timed

    clock = [1_600_000_000.0]
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: clock[0])
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
