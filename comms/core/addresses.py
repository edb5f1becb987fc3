"""E-mail address syntax: one email-validator call for every place an address enters or leaves."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

# email-validator is imported by the first check (`check_address`): its import compiles its
# syntax rules (~20 ms), and a build that validates no address does not need them.
if TYPE_CHECKING:
    from email_validator import ValidatedEmail

#: The scripts one domain label may mix: Japanese, Chinese and Korean writing with Latin (the
#: "highly restrictive" level of Unicode's UTS 39); any other mix, such as a Cyrillic "а" among
#: Latin letters, makes a look-alike of another name.
_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
#: Unicode character names whose first word is not the script's name.
_SCRIPT_WORDS = {"CJK": "HAN", "KATAKANA-HIRAGANA": "KATAKANA"}


def check_address(text: str) -> ValidatedEmail:
    """`text` checked by email-validator (no DNS); ValueError with its reason if not valid.

    Dot-atom local parts only (no quoted strings, comments or IP literals), at most 64
    characters before the @ (RFC 5321 §4.5.3.1.1, email-validator's `strict`), a domain with a
    dot and outside the special-use names, whose labels do not mix scripts (`mixed_scripts`);
    non-ASCII local parts are valid (SMTPUTF8).
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(text, check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    for label in checked.domain.split("."):
        scripts = mixed_scripts(label)
        if scripts:
            raise ValueError(
                f"The domain name {checked.domain} mixes {' and '.join(scripts)} letters in "
                f"'{label}': a look-alike of another name."
            )
    return checked


def fold_address(text: str) -> str:
    """`text` with its local part in Unicode's compatibility form (NFKC): full-width letters
    (`ｍａｘ`, as an input method in full-width mode types them), ligatures (`ﬁ`) and the like
    become the letters mail servers know. The domain is left to IDNA's own mapping in
    `check_address`, which folds full-width letters too but refuses `⒈` and its kind."""
    local, at, domain = text.rpartition("@")
    return f"{unicodedata.normalize('NFKC', local)}{at}{domain}" if at else text


def mixed_scripts(label: str) -> list[str]:
    """The scripts of a domain label's letters, sorted, when they are a mix no writing system
    uses together; else an empty list (digits, hyphens and marks belong to every script)."""
    scripts = set()
    for char in label:
        if unicodedata.category(char)[0] in "MNP" or char == "-":
            continue
        word = unicodedata.name(char, "UNKNOWN").split(" ")[0]
        scripts.add(_SCRIPT_WORDS.get(word, word))
    if len(scripts) < 2 or any(scripts <= mix for mix in _MIXES):
        return []
    return sorted(script.title() for script in scripts)


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
