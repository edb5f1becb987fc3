"""Logging for long-running commands: one stderr handler whose records never show tokens or
addresses (a traceback of a failed request would otherwise carry both)."""

from __future__ import annotations

import logging
import re

#: Signed link tokens (`uid.signature`, with or without a timestamp part) and the path segment
#: after a token route, whatever it holds.
_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]{4,}){1,2}\b(?=[^@]|$)")
_ROUTE = re.compile(r"(/(?:unsubscribe|preferences|confirm|delete|export|my-data)/)[^/\s?#\"']+")
_ADDRESS = re.compile(r"([^\s<>()\[\]\"',;:@]{1,64})@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """`text` with e-mail addresses reduced to their domain and link tokens replaced."""
    text = _ADDRESS.sub(lambda m: f"…@{m.group(2)}", text)
    text = _ROUTE.sub(r"\1[token]", text)
    return _TOKEN.sub(lambda m: m.group(0) if _harmless(m.group(0)) else "[token]", text)


def _harmless(word: str) -> bool:
    # Dotted words that are not tokens: host names, versions, module paths, file names.
    parts = word.split(".")
    return all(part.isalpha() or part.isdigit() for part in parts) or len(parts[-1]) < 16


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and traceback through `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record, with its text redacted."""
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure_logging(names: tuple[str, ...] = ("comms", "waitress")) -> None:
    """Log these loggers at INFO to stderr through the redacting filter (once per process)."""
    for name in names:
        log = logging.getLogger(name)
        if not log.handlers:
            out = logging.StreamHandler()
            out.setFormatter(logging.Formatter(FORMAT))
            log.addHandler(out)
            log.setLevel(logging.INFO)
        for handler in log.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
