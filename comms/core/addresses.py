"""E-mail address syntax: one email-validator call for every place an address enters or leaves."""

from __future__ import annotations

from email_validator import EmailNotValidError, ValidatedEmail, validate_email


def check_address(text: str) -> ValidatedEmail:
    """`text` checked by email-validator (no DNS); ValueError with its reason if not valid.

    Dot-atom local parts only (no quoted strings, comments or IP literals), at most 64
    characters before the @ (RFC 5321 §4.5.3.1.1, email-validator's `strict`), a domain with a
    dot and outside the special-use names; non-ASCII local parts are valid (SMTPUTF8).
    """
    try:
        return validate_email(text, check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
