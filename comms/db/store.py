"""The store: subscribers, consent ledger and suppression, with methods named by use case."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from comms.core.clock import now_utc
from comms.core.config import Config
from comms.core.errors import ConfigError
from comms.core.keys import Purpose, keyed_hash
from comms.db import privacy
from comms.db.counters import count_audience
from comms.db.driver import unusable
from comms.db.engine import (
    drop_old_pages,
    insert_ignore,
    make_engine,
    probe,
    read_only,
    resolve_secret,
    upgrade,
)
from comms.db.feedback import ENDS_WITH, BounceEvent, scrub_events, verdict
from comms.db.ledger import Ledger
from comms.db.link_records import LinkRecords
from comms.db.outage import DatabaseAway, is_outage
from comms.db.people import (
    Consent,
    ImportResult,
    NewSubscriber,
    Subscriber,
    SubscriberError,
    normalise_address,
    padded,
)
from comms.db.space import out_of_space, space_error
from comms.db.status import SubscriberStatus
from comms.db.subscriber_import import import_people
from comms.db.tables import consent, subscribers, suppression

# The people types are part of the store's interface; they live in comms.db.people.


def open_store(config: Config) -> Store:
    """Open the configured database, migrate it to the newest schema and return the store."""
    engine = make_engine(config.database_url)
    try:
        probe(engine)
        upgrade(engine, files_root=config.root)
        secret, generated = resolve_secret(engine, config.secret_key, config.secret_key_file)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        kind = DatabaseAway if is_outage(exc) else ConfigError
        raise unusable(exc.orig, kind) from None
    except ConfigError:
        engine.dispose()
        raise
    return Store(engine, secret, generated_secret=generated)


class Store:
    """Subscribers, consent and suppression: the only code that changes them.

    `ledger` (campaigns and deliveries) shares the engine; it calls back into `bounced` so a
    bounce changes the subscriber in the transaction of the delivery's outcome.
    """

    def __init__(self, engine: Engine, secret: str, generated_secret: bool = False) -> None:
        self.engine = engine
        self.ledger = Ledger(engine, bounces=self)
        #: Key versions and single-use links (comms.db.link_records).
        self.links = LinkRecords(engine)
        #: COMMS_SECRET_KEY, or the key generated once and kept in the database.
        self.secret = secret
        #: True when this run generated the secret and stored it in the database.
        self.generated_secret = generated_secret

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    def reading(self) -> Connection:
        """A connection for reads only: on SQLite its transactions do not take the write lock."""
        return read_only(self.engine)

    def key(self, email: str) -> str:
        """The suppression key of a normalised address: its keyed hash."""
        return keyed_hash(self.secret, Purpose.SUPPRESSION, email)

    # -- reading ---------------------------------------------------------------------------

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address (in any spelling: `Max@Example.ORG`, A-labels)."""
        try:
            email = normalise_address(email)
        except ValueError:
            email = email.strip().lower()  # not valid: stored rows are, so it finds none
        with self.reading() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()
        return Subscriber.from_row(row) if row else None

    def by_uid(self, uid: str) -> Subscriber | None:
        """The subscriber with this public uid, if any."""
        with self.reading() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.uid == uid)).first()
        return Subscriber.from_row(row) if row else None

    def suppression_reason(self, email: str) -> str | None:
        """Why this address is suppressed, or None."""
        with self.reading() as conn:
            return conn.execute(
                sa.select(suppression.c.reason).where(suppression.c.key == self.key(email))
            ).scalar()

    def iter_subscribers(self) -> Iterator[Subscriber]:
        """Every subscriber, streamed in address order (memory stays flat)."""
        with self.reading() as conn:
            # Reduced records are proofs of consent, not subscribers (comms.db.privacy).
            result = conn.execution_options(yield_per=1000).execute(
                sa.select(subscribers)
                .where(subscribers.c.reduced_at.is_(None))
                .order_by(subscribers.c.email)
            )
            for row in result:
                yield Subscriber.from_row(row)

    def search(self, part: str, offset: int, limit: int) -> tuple[list[Subscriber], int]:
        """Subscribers whose address contains `part` (any case), in address order: `limit`
        of them from `offset`, and how many there are in all."""
        s = subscribers.c
        escaped = part.strip().lower().replace("\\", "\\\\").replace("%", "\\%")
        pattern = "%" + escaped.replace("_", "\\_") + "%"
        where = sa.and_(s.reduced_at.is_(None), s.email.like(pattern, escape="\\"))
        with self.reading() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(where)).scalar_one()
            rows = conn.execute(
                sa.select(subscribers).where(where).order_by(s.email).offset(offset).limit(limit)
            )
            return [Subscriber.from_row(row) for row in rows], int(total)

    def count_active(self) -> int:
        """How many subscribers are active."""
        with self.reading() as conn:
            query = sa.select(sa.func.count()).where(
                subscribers.c.status == SubscriberStatus.ACTIVE
            )
            return int(conn.execute(query.select_from(subscribers)).scalar_one())

    def report(self, email: str) -> dict[str, Any] | None:
        """Everything stored about one person (GDPR Art. 15); None when nothing is."""
        return privacy.report(self, email)

    # -- changing --------------------------------------------------------------------------

    def _consent(self, conn: Connection, subscriber_id: int, event: Consent, at: datetime) -> int:
        count_audience(conn, event.action, at.date())
        row = conn.execute(
            sa.insert(consent)
            .values(subscriber_id=subscriber_id, at=at, **event.__dict__)
            .returning(consent.c.id)
        )
        return int(row.scalar_one())

    def _insert(
        self, conn: Connection, person: NewSubscriber, at: datetime, signing_up: bool = False
    ) -> int:
        reason = conn.execute(
            sa.select(suppression.c.reason).where(suppression.c.key == self.key(person.email))
        ).scalar()
        # A sign-up may follow the person's own unsubscribe (its record reduced by retention):
        # the confirmation lifts that block, as for a known unsubscribed person.
        if reason is not None and not (signing_up and reason == SubscriberStatus.UNSUBSCRIBED):
            raise SubscriberError(f"{person.email} is on the suppression list; not added")
        values = person.row(self.key(person.email), at)
        try:
            result = conn.execute(sa.insert(subscribers).values(values).returning(subscribers.c.id))
        except sa.exc.IntegrityError:
            raise SubscriberError(f"{person.email} is already a subscriber") from None
        return int(result.scalar_one())

    def add_pending(self, person: NewSubscriber, event: Consent) -> Subscriber:
        """Store a new person as pending (waiting for confirmation) with the request event."""
        at = now_utc()
        with self.engine.begin() as conn:
            sid = self._insert(conn, person, at, signing_up=True)
            self._consent(conn, sid, event, at)
        found = self.find(person.email)
        assert found is not None
        return found

    def add_confirmed(self, person: NewSubscriber, event: Consent) -> Subscriber:
        """Store a new person as active; `event` is the documented consent (import, confirm)."""
        at = now_utc()
        with self.engine.begin() as conn:
            sid = self._insert(conn, person, at)
            self._activate(conn, sid, self._consent(conn, sid, event, at), at)
        found = self.find(person.email)
        assert found is not None
        return found

    def _activate(self, conn: Connection, sid: int, consent_id: int, at: datetime) -> None:
        conn.execute(
            sa.update(subscribers)
            .where(subscribers.c.id == sid)
            .values(
                status=SubscriberStatus.ACTIVE,
                consent_id=consent_id,
                confirmed_at=at,
                updated_at=at,
            )
        )

    def confirm(self, uid: str, event: Consent) -> Subscriber:
        """Make a pending (or unsubscribed) person active; lifts their own unsubscribe block."""
        person = self._require(uid)
        at = now_utc()
        with self.engine.begin() as conn:
            self._activate(conn, person.id, self._consent(conn, person.id, event, at), at)
            conn.execute(
                sa.delete(suppression).where(
                    suppression.c.key == self.key(person.email),
                    suppression.c.reason == SubscriberStatus.UNSUBSCRIBED,
                )
            )
        return self._require(uid)

    def unsubscribe(self, uid: str, event: Consent) -> Subscriber:
        """Stop all mail to a person at once: status, ledger event and suppression entry."""
        person = self._require(uid)
        key, status = self.key(person.email), SubscriberStatus.UNSUBSCRIBED
        with self.engine.begin() as conn:
            self._end(conn, person.id, key, status, event, now_utc())
        return self._require(uid)

    def bounced(
        self, conn: Connection, sid: int, key: str, error: str | None, source: str, at: datetime
    ) -> None:
        """End a subscription after a permanent failure, in the caller's transaction."""
        event = Consent("bounce", source, channel="smtp", note=error)
        self._end(conn, sid, key, SubscriberStatus.BOUNCED, event, at)

    def _end(
        self,
        conn: Connection,
        sid: int,
        key: str,
        status: SubscriberStatus,
        event: Consent,
        at: datetime,
    ) -> None:
        """Set a final state, suppress the address (the reason is the state) and log `event`."""
        values: dict[str, Any] = {"status": status, "updated_at": at, "unsubscribed_at": at}
        conn.execute(sa.update(subscribers).where(subscribers.c.id == sid).values(values))
        conn.execute(insert_ignore(conn, suppression).values(key=key, reason=status, created_at=at))
        self._consent(conn, sid, event, at)

    # -- bounces and complaints (comms.bounces.policy) --------------------------------------

    def record_feedback(
        self,
        uid: str,
        event: BounceEvent,
        consent: Consent,
        limit: int = 1,
        since: datetime | None = None,
    ) -> str:
        """Record a bounce, complaint or provider unsubscribe and end the subscription when
        `comms.db.feedback.verdict` says so (a hard bounce, the `limit`-th soft one since
        `since`, a complaint, an unsubscribe). Returns "suppressed", "counted" or "duplicate"."""
        person = self._require(uid)
        at = now_utc()
        with self.engine.begin() as conn:
            found = verdict(conn, person.id, person.status, event, at, limit, since or at)
            if found is not None:
                return found
            key = self.key(person.email)
            self._end(conn, person.id, key, ENDS_WITH[event.kind], consent, at)
        return "suppressed"

    def _require(self, uid: str) -> Subscriber:
        person = self.by_uid(uid)
        if person is None:
            raise SubscriberError("no such subscriber")
        return person

    def erase(self, email: str) -> dict[str, int]:
        """Erase a person (Art. 17): profile, consent rows and delivery links go; the
        suppression key stays so that the address is never mailed or imported again
        (docs/requirements.md L12)."""
        at = now_utc()
        key = self.key(email)
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(conn, suppression).values(key=key, reason="erased", created_at=at)
            )
            reduced = privacy.delete_reduced(conn, key)
            count_audience(conn, "erasure", at.date())
            sid = conn.execute(
                sa.select(subscribers.c.id).where(subscribers.c.email == email)
            ).scalar()
            removed = {"subscriber": reduced, "consent": 0, "deliveries": 0}
            if sid is not None:
                ledger = conn.execute(
                    sa.select(sa.func.count()).where(consent.c.subscriber_id == sid)
                ).scalar_one()
                unlinked = self.ledger.unlink_deliveries(conn, sid, at)
                scrub_events(conn, sid)
                conn.execute(sa.delete(subscribers).where(subscribers.c.id == sid))
                removed = {
                    "subscriber": 1 + reduced,
                    "consent": int(ledger),
                    "deliveries": unlinked,
                }
        drop_old_pages(self.engine)
        return removed

    def import_subscribers(
        self, people: Iterable[tuple[int, NewSubscriber]], event: Consent, confirmed: bool
    ) -> tuple[ImportResult, list[tuple[int, str]]]:
        """Add many people in one transaction; return counts and (line, note) for skipped
        rows. A database out of space raises LocalError: nothing of them was added."""
        try:
            return import_people(self.engine, self.key, people, event, confirmed)
        except sa.exc.DBAPIError as exc:
            if not out_of_space(exc):
                raise
            raise space_error(exc, self.engine.url.render_as_string(False)) from exc

    # -- subscriber self-service (comms.subscriptions) -------------------------------------

    def note(self, email: str, event: Consent) -> bool:
        """Add an event to a person's record without changing their status (False: unknown)."""
        person = self.find(email)
        if person is None:
            return False
        with self.engine.begin() as conn:
            self._consent(conn, person.id, event, now_utc())
        return True

    def request_again(self, uid: str, event: Consent) -> Subscriber:
        """A known person signs up again (pending or unsubscribed): record the request."""
        person = self._require(uid)
        at = now_utc()
        with self.engine.begin() as conn:
            self._consent(conn, person.id, event, at)
            # The purge counts from the latest request (docs/requirements.md L4).
            conn.execute(
                sa.update(subscribers).where(subscribers.c.id == person.id).values(updated_at=at)
            )
        return person

    def update_preferences(
        self, uid: str, topics: Sequence[str], regions: Sequence[str], language: str
    ) -> Subscriber:
        """Save a person's own choice of topics, regions and language."""
        person = self._require(uid)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(subscribers)
                .where(subscribers.c.id == person.id)
                .values(
                    topics=padded(topics),
                    regions=padded(regions),
                    language=language,
                    updated_at=now_utc(),
                )
            )
        return self._require(uid)

    def reduce_ended(self, before: datetime) -> int:
        """Reduce subscriptions ended before `before` to the proof of consent (retention)."""
        return privacy.reduce_ended(self, before, now_utc())

    def purge_pending(self, older_than: datetime) -> int:
        """Delete sign-ups still unconfirmed whose last request is before `older_than`
        (docs/requirements.md L4)."""
        s = subscribers.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(subscribers).where(
                    s.status == SubscriberStatus.PENDING, s.updated_at < older_than
                )
            )
        return int(result.rowcount or 0)
