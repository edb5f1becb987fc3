"""Logging for long-running commands: one stderr handler whose records never show tokens,
addresses or the configuration's secrets (a traceback of a failed request could carry each)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

#: Signed link tokens (`uid.signature`, with or without a timestamp part) and the path segment
#: after a token route, whatever it holds.
_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]{4,}){1,2}\b(?=[^@]|$)")
_ROUTE = re.compile(r"(/(?:unsubscribe|preferences|confirm|delete|export|my-data)/)[^/\s?#\"']+")
_ADDRESS = re.compile(r"([^\s<>()\[\]\"',;:@]{1,64})@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
#: A URL's password: from the colon after the user name to the last @ before a space. Drivers
#: take a password with an unencoded /, ?, # or @ (where urlsplit ends the host part), and a
#: URL may not parse at all: the rule needs no parse, and hides too much rather than too little.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*):\S*@")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def shown_url(url: str) -> str:
    """A URL (or a text holding URLs) as errors and logs show it: the password of each
    replaced by `***`, the rest kept; whether or not it parses."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with secrets and link tokens replaced and addresses reduced to their domain.

    `secrets` are the values of the configuration's secrets (`Config.secret_values`, one list
    of them in comms.core.settings.SECRETS); the longest is replaced first.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[secret]")
    text = shown_url(text)
    text = _ADDRESS.sub(lambda m: f"…@{m.group(2)}", text)
    text = _ROUTE.sub(r"\1[token]", text)
    return _TOKEN.sub(lambda m: m.group(0) if _harmless(m.group(0)) else "[token]", text)


def _harmless(word: str) -> bool:
    # Dotted words that are not tokens: host names, versions, module paths, file names.
    parts = word.split(".")
    return all(part.isalpha() or part.isdigit() for part in parts) or len(parts[-1]) < 16


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and traceback through `redact`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Mask `secrets` (their values) as well as addresses and tokens."""
        super().__init__()
        self.secrets = frozenset(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record, with its text redacted."""
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(trace, self.secrets)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def configure_logging(
    names: tuple[str, ...] = ("comms", "waitress"), secrets: Iterable[str] = ()
) -> None:
    """Log these loggers at INFO to stderr through the redacting filter (once per process);
    `secrets` (`Config.secret_values()`) are masked from then on."""
    for name in names:
        log = logging.getLogger(name)
        if not log.handlers:
            out = logging.StreamHandler()
            out.setFormatter(logging.Formatter(FORMAT))
            log.addHandler(out)
            log.setLevel(logging.INFO)
        for handler in log.handlers:
            found = [f for f in handler.filters if isinstance(f, RedactingFilter)]
            if found:
                found[0].secrets |= frozenset(s for s in secrets if s)
            else:
                handler.addFilter(RedactingFilter(secrets))
