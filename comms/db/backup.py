"""`comms backup` and `comms restore`: SQLite's online backup API; PostgreSQL has its own tools."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from comms.core.database_url import sqlite_file
from comms.core.errors import CommsError, LocalError
from comms.core.files import private_file
from comms.core.local_faults import space_note
from comms.core.logs import shown_url
from comms.core.process import is_abandoned
from comms.db.driver import VERSION_SQL
from comms.db.space import out_of_space
from comms.db.status import DeliveryStatus
from comms.db.tables import deliveries, scheduler_lease

PG_ADVICE = (
    "the database is PostgreSQL: back it up with `pg_dump --format=custom --file=FILE DBNAME` "
    "(a consistent snapshot while comms keeps running); to restore, stop every comms process, "
    "recreate the database (`dropdb DBNAME`, `createdb DBNAME`), then `pg_restore "
    "--dbname=DBNAME FILE` (see docs/operations.md)"
)


def sqlite_path(url: str) -> Path:
    """The file of a SQLite database URL, or a CommsError saying what to use instead."""
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        backend = None
    if backend == "postgresql":
        raise CommsError(PG_ADVICE)
    path = sqlite_file(url)
    if path is None:
        raise CommsError(
            f"cannot back up or restore the database '{shown_url(url)}': not a SQLite file"
        )
    return path


def _copy(source: Path, target: Path) -> int:
    """Copy a whole SQLite database page by page (readers and writers may go on); page count.
    The connections are closed whatever happens: a failed copy holds no file open."""
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            return int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()


def _full(exc: BaseException, target: Path, source: Path, then: str) -> LocalError | None:
    """`exc` as one line if it is SQLite out of space writing `target` (a copy of `source`),
    followed by `then` (what became of it); None for any other error."""
    if not isinstance(exc, sqlite3.Error) or not out_of_space(exc):
        return None
    note = space_note(target, source.stat().st_size)
    return LocalError(f"cannot write {target}: {exc} ({note}); {then}")


def _remove(path: Path) -> None:
    """Remove an SQLite file of ours and what SQLite keeps beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _check(path: Path) -> None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.execute(VERSION_SQL).fetchone()
        except sqlite3.DatabaseError as exc:
            raise CommsError(f"{path}: not a comms database ({exc})") from None
    conn.close()
    if result != "ok":
        raise CommsError(f"{path}: the database is damaged ({result})")


def backup(url: str, target: Path) -> int:
    """Write a consistent copy of the SQLite database to `target` while it is in use."""
    source = sqlite_path(url)
    if not source.exists():
        raise CommsError(f"{source}: no database to back up")
    if target.exists():
        raise CommsError(f"{target}: exists already; choose a new file")
    # Made under another name and renamed once checked: `target` never names a partial copy,
    # not even after the process was killed.
    partial = target.with_name(f".{target.name}.partial")
    _remove(partial)  # left by a backup killed before
    private_file(partial)  # a copy of personal data: 0600 whatever the umask
    try:
        pages = _copy(source, partial)
        _check(partial)
        os.replace(partial, target)
    except BaseException as exc:
        _remove(partial)  # a partial copy is no backup
        full = _full(exc, target, source, "no copy was kept")
        if full is not None:
            raise full from exc
        raise
    finally:
        _remove(partial)  # the empty log files the read-only check left beside it
    return pages


def users(engine: Engine, now: datetime) -> list[str]:
    """The other comms processes using the database now, in words: the scheduler's live lease
    (`comms serve`) and live claims of deliveries (a send run of `comms send`, `comms worker`
    or the scheduler). A lease or claim that ran out, or whose process on this host is gone,
    counts for nobody."""
    found: list[str] = []
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        if scheduler_lease.name in tables:
            t = scheduler_lease.c
            for owner, beat, until in conn.execute(
                sa.select(t.owner, t.heartbeat_at, t.expires_at)
            ):
                if until > now and not is_abandoned(owner):
                    found.append(
                        f"the scheduler runs in {owner} (last heartbeat {beat:%H:%M:%S} UTC)"
                    )
        if deliveries.name in tables:
            d = deliveries.c
            claims = conn.execute(
                sa.select(d.claimed_by, sa.func.count())
                .where(d.status == DeliveryStatus.SENDING, d.claimed_until > now)
                .group_by(d.claimed_by)
                .order_by(d.claimed_by)
            ).all()
            for owner, count in claims:
                if owner is not None and not is_abandoned(owner):
                    found.append(f"{owner} is sending {count} delivery(ies)")
    return found


def _refuse_in_use(target: Path, now: datetime) -> None:
    if not target.exists():
        return
    engine = sa.create_engine(f"sqlite:///{target}")
    try:
        busy = users(engine, now)
    except sa.exc.DatabaseError as exc:
        raise CommsError(f"{target}: cannot tell whether comms uses it: {exc.orig}") from None
    finally:
        engine.dispose()
    if busy:
        raise CommsError(
            f"{target} is in use by another comms process: {'; '.join(busy)}. Stop `comms "
            "serve`, `comms worker` and every `comms send` on this database, then restore "
            "(nothing was changed)"
        )


def restore(url: str, source: Path, now: datetime) -> int:
    """Replace the SQLite database with the backup `source`; refused (CommsError) while
    another comms process uses it (`users`), as the ledger would go back under its feet."""
    target = sqlite_path(url)
    if not source.is_file():
        raise CommsError(f"{source}: no such backup file")
    _check(source)
    _refuse_in_use(target, now)
    private_file(target)  # as the database comms creates itself: 0600 whatever the umask
    try:
        return _copy(source, target)
    except sqlite3.Error as exc:
        full = _full(exc, target, source, "the database is as it was")
        if full is not None:
            raise full from exc
        raise
