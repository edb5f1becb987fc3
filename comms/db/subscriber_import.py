"""CSV-sized imports into the subscriber store: many people per transaction, suppression and
known addresses skipped with a note per line."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.core.clock import now_utc
from comms.db.counters import count_audience
from comms.db.engine import bulk_insert
from comms.db.people import Consent, ImportResult, NewSubscriber
from comms.db.status import SubscriberStatus
from comms.db.tables import consent, subscribers, suppression


def import_people(
    engine: Engine,
    key: Callable[[str], str],
    people: Iterable[tuple[int, NewSubscriber]],
    event: Consent,
    confirmed: bool,
) -> tuple[ImportResult, list[tuple[int, str]]]:
    """Add many people in one transaction (statements of 2,000 rows); return counts and
    (line, note) for skipped rows. `key` is the store's suppression key of an address.

    All or nothing: an import that fails (a full disk) leaves no part of the file behind, so
    it can simply run again; the caller says that nothing was imported.
    """
    result = ImportResult()
    notes: list[tuple[int, str]] = []
    chunk: list[tuple[int, NewSubscriber]] = []
    with engine.begin() as conn:
        for item in people:
            chunk.append(item)
            if len(chunk) >= 2000:
                _import_chunk(conn, key, chunk, event, confirmed, result, notes)
                chunk = []
        if chunk:
            _import_chunk(conn, key, chunk, event, confirmed, result, notes)
    if result.added and engine.dialect.name == "postgresql":
        _gather_statistics(engine)
    return result, notes


def _gather_statistics(engine: Engine) -> None:
    """ANALYZE the tables an import filled. PostgreSQL's autovacuum gathers statistics a
    minute or more later; until then a send plans its snapshot of thousands of subscribers
    as a few dozen rows. SQLite keeps no statistics unless asked, and its plans need none."""
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE subscribers, consent"))
    except sa.exc.DBAPIError:
        pass  # the import is committed; only the estimates wait for autovacuum


def _import_chunk(
    conn: Connection,
    key: Callable[[str], str],
    chunk: Sequence[tuple[int, NewSubscriber]],
    event: Consent,
    confirmed: bool,
    result: ImportResult,
    notes: list[tuple[int, str]],
) -> None:
    at = now_utc()
    keys = {p.email: key(p.email) for _, p in chunk}
    s = subscribers.c
    known = set(conn.execute(sa.select(s.email).where(s.email.in_(keys))).scalars())
    blocked = set(
        conn.execute(
            sa.select(suppression.c.key).where(suppression.c.key.in_(keys.values()))
        ).scalars()
    )
    fresh: list[dict[str, Any]] = []
    for line, person in chunk:
        if keys[person.email] in blocked:
            result.suppressed += 1
            notes.append((line, "address is on the suppression list; skipped"))
        elif person.email in known:
            result.known += 1
            notes.append((line, "already a subscriber; left unchanged"))
        else:
            fresh.append(person.row(keys[person.email], at))
    if not fresh:
        return
    before = conn.execute(sa.select(sa.func.coalesce(sa.func.max(s.id), 0))).scalar_one()
    bulk_insert(conn, subscribers, fresh)
    # This chunk's rows: newer than `before` and stamped with this chunk's time.
    mine = sa.and_(s.id > before, s.created_at == at, s.consent_id.is_(None))
    values = {k: sa.literal(v, consent.c[k].type) for k, v in event.__dict__.items()}
    ledger = sa.select(s.id, sa.literal(at, consent.c.at.type), *values.values())
    conn.execute(
        sa.insert(consent).from_select(["subscriber_id", "at", *values], ledger.where(mine))
    )
    count_audience(conn, event.action, at.date(), len(fresh))
    if confirmed:
        # The import's own consent row is the basis of the active state.
        basis = (
            sa.select(sa.func.max(consent.c.id))
            .where(consent.c.subscriber_id == s.id)
            .scalar_subquery()
        )
        conn.execute(
            sa.update(subscribers)
            .where(mine)
            .values(status=SubscriberStatus.ACTIVE, consent_id=basis, confirmed_at=at)
        )
    result.added += len(fresh)
