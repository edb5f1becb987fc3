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


#: Domains whose mail service ignores dots in the local part (Gmail: `m.muster@` and
#: `mmuster@` are one mailbox; googlemail.com is the same service). Other providers deliver
#: `m.muster` and `mmuster` to different people, so their dots are kept.
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def mailbox(address: str) -> str:
    """The mailbox a valid address delivers to, for counting mails per person: the local part
    without its `+tag`, case folded, dots dropped where the domain ignores them
    (DOTLESS_DOMAINS, googlemail.com as gmail.com); the domain in lower case.

    `victim+1@` … `victim+10@` and `Victim@` are one mailbox, so a cap per mailbox holds.
    Never used to send: the address is delivered as it was given.
    """
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0].casefold() or local.casefold()
    domain = domain.lower().rstrip(".")
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"
