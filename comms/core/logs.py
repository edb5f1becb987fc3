"""Logging for long-running commands: one stderr handler whose records never show tokens,
addresses or the configuration's secrets (a traceback of a failed request could carry each)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

#: Signed link tokens (`uid.signature`, with or without a timestamp part) and the path segment
#: after a token route, whatever it holds.
_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]{4,}){1,2}\b(?=[^@]|$)")
_ROUTE = re.compile(r"(/(?:unsubscribe|preferences|confirm|delete|export|my-data)/)[^/\s?#\"']+")
_ADDRESS = re.compile(r"([^\s<>()\[\]\"',;:@]{1,64})@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
#: A URL's password: from the colon after the user name to the last @ before a space. Drivers
#: take a password with an unencoded /, ?, # or @ (where urlsplit ends the host part), and a
#: URL may not parse at all: the rule needs no parse, and hides too much rather than too little.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*):\S*@")


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
            record.fault = redact(_one_line(record.exc_info[1]), self.secrets)
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(trace, self.secrets)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def configure_logging(
    names: tuple[str, ...] = ("comms", "waitress"),
    secrets: Iterable[str] = (),
    *,
    level: int = logging.INFO,
    style: str | None = None,
    debug: bool | None = None,
    process: str | None = None,
) -> None:
    """Log these loggers to stderr through the redacting filter, one handler each per process.

    `secrets` (`Config.secret_values()`) are masked from then on. `level`: the lowest level
    shown (a later call may lower it: `comms serve` logs from INFO, one-off commands warnings
    only). `style` (`text` or `json`, the `[log] format` setting), `debug` (`comms --debug`:
    tracebacks) and `process` (the command, `comms worker`) apply to every line from then on.
    """
    given = {"style": style, "debug": debug, "process": process}
    LAYOUT.update({key: value for key, value in given.items() if value is not None})
    for name in names:
        log = logging.getLogger(name)
        found: list[logging.Handler] = [h for h in log.handlers if isinstance(h, _Stderr)]
        if not found:
            out = _Stderr()
            out.setFormatter(LineFormatter())
            out.setLevel(level)
            log.addHandler(out)
            found = [out]
        for handler in found:
            handler.setLevel(min(handler.level, level))
        if level <= logging.INFO and (log.level == logging.NOTSET or log.level > level):
            # Only for the long-running commands: a one-off command leaves the logger's level
            # alone (its handler shows warnings), so that INFO stays quiet everywhere else.
            log.setLevel(level)
        for handler in log.handlers:
            filters = [f for f in handler.filters if isinstance(f, RedactingFilter)]
            if filters:
                filters[0].secrets |= frozenset(s for s in secrets if s)
            else:
                handler.addFilter(RedactingFilter(secrets))


#: How lines look from now on in this process (set through `configure_logging`).
LAYOUT: dict[str, Any] = {"style": "text", "debug": False, "process": "comms"}
#: What a record may carry besides its message (`extra={"campaign": slug, "counts": counts}`):
#: keys of a JSON line (a text line words them in its message).
FIELDS = ("campaign", "counts")


def _one_line(exc: BaseException | None) -> str:
    """`Type: first line of the message`: a fault as one log line shows it."""
    if exc is None:
        return ""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class _Stderr(logging.StreamHandler[TextIO]):
    """A handler that writes to whatever `sys.stderr` is now (a test runner swaps it), unless
    `setStream` gave it another stream."""

    def __init__(self) -> None:
        self._chosen: TextIO | None = None
        super().__init__()

    @property
    def stream(self) -> TextIO:
        """The stream given by `setStream`, else the current standard error."""
        return self._chosen or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._chosen = None if value is sys.stderr else value


class LineFormatter(logging.Formatter):
    """One line per record, as text or JSON (`LAYOUT`): UTC time, level, process, logger,
    message (JSON: campaign and counts as keys); a fault as one line, its traceback only in
    debug."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line (debug text: the traceback on the following lines)."""
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        when = when.replace("+00:00", "Z")
        fields = {k: getattr(record, k) for k in FIELDS if getattr(record, k, None) is not None}
        trace = record.exc_text or (
            self.formatException(record.exc_info) if record.exc_info else None
        )
        fault = getattr(record, "fault", None) or (
            _one_line(record.exc_info[1]) if record.exc_info else None
        )
        debug = bool(LAYOUT["debug"])
        if LAYOUT["style"] == "json":
            doc: dict[str, Any] = {
                "time": when,
                "level": record.levelname,
                "process": LAYOUT["process"],
                "pid": record.process,
                "logger": record.name,
                "message": record.getMessage(),
                **fields,
            }
            if fault:
                doc["fault"] = fault
            if trace and debug:
                doc["traceback"] = trace
            return json.dumps(doc, ensure_ascii=False, default=str)
        line = (
            f"{when} {record.levelname} {LAYOUT['process']}[{record.process}] {record.name}: "
            f"{record.getMessage()}"
        )
        if trace and debug:
            return f"{line}\n{trace}"
        return f"{line} ({fault})" if fault else line
