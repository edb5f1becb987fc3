"""Requests that may only read: while `read_only()` is active in a thread, every statement
that is not a read and every mail refuses to run, so a GET or HEAD cannot change anything."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from comms.core.errors import CommsError

_READ_ONLY: ContextVar[bool] = ContextVar("comms_read_only", default=False)
#: The statements a read may run: queries, and SQLite's and PostgreSQL's session settings
#: (the engine sets them on connect); transactions begin and end outside the cursor.
READS = frozenset({"SELECT", "PRAGMA", "SHOW", "BEGIN"})


class WriteRefused(CommsError):
    """Something tried to change state inside `read_only()` (a bug in the caller)."""


@contextmanager
def read_only() -> Iterator[None]:
    """Within the block (this thread or task only), writes and mails raise WriteRefused."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def refuse_if_read_only(what: str) -> None:
    """Raise WriteRefused when called inside `read_only()`; `what` names the attempt."""
    if _READ_ONLY.get():
        raise WriteRefused(f"{what} refused: this request may only read")


def _before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any) -> None:
    if _READ_ONLY.get():
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if verb not in READS:
            raise WriteRefused(f"{verb or 'empty statement'} refused: this request may only read")


def guard_engine(engine: Engine) -> None:
    """Make `engine` refuse writes inside `read_only()` (once per engine)."""
    if not sa.event.contains(engine, "before_cursor_execute", _before_execute):
        sa.event.listen(engine, "before_cursor_execute", _before_execute)


@contextmanager
def bookkeeping() -> Iterator[None]:
    """The guard's named exception to `read_only()`: within the block a GET may write what
    changes nobody's data, namely an anonymous counter (a number per page or link and day:
    comms.db.counters), a desk login's last-seen time (its idle timeout), and the desk login
    an identity provider's answer makes (single sign-on answers with a GET, by the standard)."""
    token = _READ_ONLY.set(False)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)
