"""The send run's recorder: a worker goes on only once its own outcome is durable."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from comms.core.errors import CommsError
from comms.db.outage import Patience
from comms.db.outcomes import Claimed, Outcome
from comms.db.status import DeliveryStatus, SubscriberStatus
from comms.mail.message import OutgoingMessage, Recipient
from comms.sending import recorder as recorder_module
from comms.sending.recorder import Recorder


class GatedWriter:
    """Commits a group only when the test lets it; remembers what it committed."""

    def __init__(self) -> None:
        self.go = threading.Semaphore(0)
        #: Set when the writer has taken a group and waits to commit it.
        self.taken = threading.Event()
        self.committed: list[int] = []
        self.fail = False

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        self.taken.set()
        self.go.acquire()
        if self.fail:
            raise RuntimeError("disk on fire")
        self.committed += [o.delivery_id for o in outcomes]

    def close(self) -> None:
        """Nothing to give back."""


def _sent(did: int) -> Outcome:
    return Outcome(did, DeliveryStatus.SENT, f"<{did}@test>")


def _waiter(recorder: Recorder, seq: int, woke: list[tuple[int, list[int]]], writer: GatedWriter,
            errors: list[BaseException]) -> threading.Thread:  # fmt: skip
    def wait() -> None:
        try:
            recorder.wait(seq)
        except CommsError as exc:
            errors.append(exc)
            return
        woke.append((seq, list(writer.committed)))

    thread = threading.Thread(target=wait, daemon=True)  # a broken recorder fails, not hangs
    thread.start()
    return thread


def test_each_waiter_goes_on_once_its_outcome_is_committed_and_not_before() -> None:
    writer = GatedWriter()
    recorder = Recorder(writer)
    recorder.start()
    first = recorder.submit(_sent(1))
    woke: list[tuple[int, list[int]]] = []
    errors: list[BaseException] = []
    waiting = [_waiter(recorder, first, woke, writer, errors)]
    assert writer.taken.wait(5)  # outcome 1 alone is on its way
    second = recorder.submit(_sent(2))
    waiting.append(_waiter(recorder, second, woke, writer, errors))
    writer.go.release()  # commits outcome 1
    waiting[0].join(5)
    assert woke == [(first, [1])]
    assert waiting[1].is_alive()  # outcome 2 is not durable yet
    writer.go.release()
    waiting[1].join(5)
    assert woke == [(first, [1]), (second, [1, 2])]
    recorder.wait(0)  # nothing to wait for
    recorder.close()
    assert errors == []


def test_a_failed_commit_wakes_every_waiter_with_the_error() -> None:
    writer = GatedWriter()
    writer.fail = True
    recorder = Recorder(writer)
    recorder.start()
    woke: list[tuple[int, list[int]]] = []
    errors: list[BaseException] = []
    seqs = [recorder.submit(_sent(n)) for n in (1, 2, 3)]
    waiting = [_waiter(recorder, seq, woke, writer, errors) for seq in seqs]
    writer.go.release()
    for thread in waiting:
        thread.join(5)
    assert woke == []
    assert len(errors) == 3
    with pytest.raises(CommsError, match="disk on fire"):
        recorder.wait(seqs[0])
    recorder.close()


class GroupsWriter:
    """Commits at once; remembers each group it committed, and which thread wrote it."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.threads: list[str] = []
        self.wrote = threading.Semaphore(0)

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        self.groups.append([o.delivery_id for o in outcomes])
        self.threads.append(threading.current_thread().name)
        self.wrote.release()

    def close(self) -> None:
        """Nothing to give back."""


def test_the_worker_that_needs_an_outcome_commits_every_pending_one_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outcomes wait until a connection needs one before its next message: that worker
    commits them all in one group, in its own thread (not one commit per outcome: SQLite's
    write lock and log are paid per commit; and no hand-over to another thread and back)."""
    monkeypatch.setattr(recorder_module, "LINGER", 60.0)  # the thread leaves them alone
    writer = GroupsWriter()
    recorder = Recorder(writer)
    recorder.start()
    first, second = recorder.submit(_sent(1)), recorder.submit(_sent(2))
    assert not writer.wrote.acquire(timeout=0.2)  # nobody needs them yet
    assert not recorder.durable(first)
    recorder.wait(first)
    assert writer.groups == [[1, 2]]
    assert writer.threads == [threading.current_thread().name]
    assert recorder.durable(second)  # it went with the first
    recorder.wait(second)  # and needs no commit of its own
    last = recorder.submit(_sent(3))
    recorder.close()  # what is left is written at the end
    assert recorder.durable(last)
    assert writer.groups == [[1, 2], [3]]
    assert writer.threads[1] == "comms-ledger"


def test_a_worker_whose_outcome_another_is_committing_waits_for_that_commit() -> None:
    writer = GatedWriter()
    recorder = Recorder(writer)
    recorder.start()
    first, second = recorder.submit(_sent(1)), recorder.submit(_sent(2))
    woke: list[tuple[int, list[int]]] = []
    errors: list[BaseException] = []
    committer = _waiter(recorder, first, woke, writer, errors)
    assert writer.taken.wait(5)  # outcomes 1 and 2 are being written
    writer.taken.clear()
    third = recorder.submit(_sent(3))  # came after: not in that group
    waiting = [_waiter(recorder, second, woke, writer, errors)]
    waiting.append(_waiter(recorder, third, woke, writer, errors))
    assert not writer.taken.wait(0.2)  # no second commit while the first is under way
    assert all(thread.is_alive() for thread in [committer, *waiting])
    writer.go.release()
    committer.join(5)
    assert writer.taken.wait(5)  # outcome 3's own commit
    writer.go.release()
    for thread in waiting:
        thread.join(5)
    seen = dict(woke)
    assert seen[first] == [1, 2]
    # Outcome 2 was durable once the first commit ended (whether or not outcome 3's own
    # commit took the lock before its waiter did).
    assert seen[second][:2] == [1, 2]
    assert seen[third] == [1, 2, 3]
    assert writer.committed == [1, 2, 3]
    recorder.close()
    assert errors == []


class FullDiskWriter:
    """Refuses the first `refusals` writes as SQLite does on a full disk, then commits."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.tries = 0
        self.committed: list[int] = []

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        self.tries += 1
        if self.tries <= self.refusals:
            full = sqlite3.OperationalError("database or disk is full")
            full.sqlite_errorname = "SQLITE_FULL"
            raise full
        self.committed += [o.delivery_id for o in outcomes]

    def close(self) -> None:
        """Nothing to give back."""


def test_a_worker_waits_through_a_full_disk_until_its_outcome_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outcome of a message that went out is kept and tried again while the disk is full:
    the worker goes on only once it is written (its next message must not go before)."""
    monkeypatch.setattr(recorder_module, "SPACE_POLL", 0.01)
    monkeypatch.setattr(recorder_module, "LINGER", 60.0)
    writer = FullDiskWriter(refusals=3)
    recorder = Recorder(writer)
    recorder.start()
    first, second = recorder.submit(_sent(1)), recorder.submit(_sent(2))
    recorder.wait(first)
    assert writer.tries == 4 and writer.committed == [1, 2]
    assert recorder.durable(second) and recorder.error is None
    recorder.close()


class InterruptedWriter:
    """Interrupted in the middle of its first write (Ctrl+C in the writing thread); writes
    the later ones."""

    def __init__(self) -> None:
        self.committed: list[int] = []

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        if not self.committed:
            self.committed.append(0)
            raise KeyboardInterrupt
        self.committed += [o.delivery_id for o in outcomes]

    def close(self) -> None:
        """Nothing to give back."""


def test_a_write_interrupted_for_good_fails_every_later_wait() -> None:
    """The group that was being written is lost: every worker waiting for it, or later for
    its own, gets the error; a later commit must not pass the lost outcome off as durable."""
    writer = InterruptedWriter()
    recorder = Recorder(writer, Patience("test", limit=0.0))
    first = recorder.submit(_sent(1))
    with pytest.raises(KeyboardInterrupt):
        recorder.wait(first)
    second = recorder.submit(_sent(2))
    with pytest.raises(CommsError, match="cannot write the send ledger"):
        recorder.wait(second)
    with pytest.raises(CommsError, match="cannot write the send ledger"):
        recorder.wait(first)
    assert writer.committed == [0]  # nothing written after the loss


def test_an_outcome_nobody_waits_for_is_committed_all_the_same() -> None:
    """A run whose workers have nothing more to send still gets its outcomes written (the
    dispatcher waits for a retried row to be handed back before claiming it again)."""
    writer = GroupsWriter()
    recorder = Recorder(writer)
    recorder.start()
    recorder.submit(_sent(1))
    assert writer.wrote.acquire(timeout=5)
    assert writer.groups == [[1]]
    assert writer.threads == ["comms-ledger"]
    recorder.submit(_sent(2))  # the thread slept meanwhile: this wakes it again
    assert writer.wrote.acquire(timeout=5)
    assert writer.groups == [[1], [2]]
    recorder.close()


@pytest.mark.parametrize(
    "record",
    [
        Claimed(
            1,
            0,
            datetime(2031, 5, 1, tzinfo=UTC),
            7,
            "u1",
            "a@example.org",
            None,
            "de",
            SubscriberStatus.ACTIVE,
            "k",
        ),  # fmt: skip
        Outcome(1, DeliveryStatus.SENT, "<1@test>"),
        Recipient("u1", "a@example.org"),
        OutgoingMessage("<1@test>", "news@example.org", "a@example.org", b"data", "slug/u1"),
    ],
    ids=lambda record: type(record).__name__,
)
def test_the_records_made_per_message_are_immutable_named_tuples(record: object) -> None:
    # A frozen dataclass sets each field through object.__setattr__: several times the cost
    # of a tuple, four records a message. Immutable all the same: no field can be set.
    assert isinstance(record, tuple)
    field = type(record)._fields[0]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        setattr(record, field, 2)
    assert record._replace(**{field: getattr(record, field)}) == record  # type: ignore[attr-defined]
