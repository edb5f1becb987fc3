"""The send ledger end to end on a real SQLite file, with scripted in-test transports."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session

from comms.core.clock import now_utc
from comms.core.errors import PermanentFailure, PolicyRejection, TemporaryFailure, Unreachable
from comms.core.settings import Delivery
from comms.db.ledger import Campaign
from comms.db.outcomes import Outcome
from comms.db.people import Consent, NewSubscriber
from comms.db.store import Store
from comms.db.tables import deliveries
from comms.mail.message import OutgoingMessage, Recipient
from comms.mail.smtp import SmtpTransport
from comms.sending.campaign import CampaignChanged, SendReport, prepare, send
from comms.sending.claims import POLL, ClaimKeeper
from comms.sending.ports import OutcomeWriter
from comms.sending.run import SendOptions
from comms.sending.throttle import TokenBucket

from .ledgerkit import IMPORT, Sink, build, make_store
from .smtp_servers import Handler, smtp_server

#: The shipped delivery settings, with no wait before the first retries.
FAST = SendOptions.of(Delivery(retry_backoff_seconds=0))


def start(store: Store, slug: str = "ausgabe-1", **kw: list[str]) -> Campaign:
    campaign, _ = prepare(store, slug, "hash-1", kw.get("topics", []), kw.get("regions", []))
    return campaign


@pytest.mark.database
def test_sends_each_subscriber_once_and_a_rerun_sends_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path, 250)
    sink = Sink()
    campaign, created = prepare(store, "ausgabe-1", "hash-1", [], [])
    assert created and campaign.recipients == 250
    report = send(store, campaign, build, sink.opener, FAST)
    assert report.exit_code == 0
    assert report.counts == {"sent": 250}
    assert set(sink.per_address().values()) == {1}
    assert len(sink.per_address()) == 250
    assert sink.opened == sink.closed == 4
    again, created = prepare(store, "ausgabe-1", "hash-1", [], [])
    assert not created
    report = send(store, again, build, sink.opener, FAST)
    assert report.exit_code == 0 and report.done_now == {}
    assert len(sink.delivered) == 250
    done = store.ledger.campaign("ausgabe-1")
    assert done is not None and done.status == "done"


@pytest.mark.database
def test_suppression_is_checked_right_before_each_message(tmp_path: Path) -> None:
    """Enqueue 100, unsubscribe #50 mid-run → #50 is not sent (docs/requirements.md S12)."""
    store = make_store(tmp_path, 100)
    campaign = start(store)
    victim = store.find("user50@example.org")
    assert victim is not None
    sink = Sink()

    def unsubscribe_during_run(recipient: str) -> None:
        if recipient == "user10@example.org":
            store.unsubscribe(victim.uid, Consent("unsubscribe", "test", channel="one-click"))

    sink.before_send = unsubscribe_during_run
    report = send(store, campaign, build, sink.opener, replace(FAST, concurrency=1))
    assert "user50@example.org" not in sink.per_address()
    assert len(sink.delivered) == 99
    assert report.counts == {"sent": 99, "skipped": 1}
    assert report.exit_code == 0


@pytest.mark.database
def test_suppressed_and_inactive_people_are_not_enqueued(tmp_path: Path) -> None:
    store = make_store(tmp_path, 5)
    store.add_pending(NewSubscriber("pending@example.org"), Consent("request", "test"))
    store.erase("user1@example.org")
    campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
    assert campaign.recipients == 4
    # The erased address stays blocked on re-import:
    result, notes = store.import_subscribers(
        [(2, NewSubscriber("user1@example.org"))], IMPORT, confirmed=True
    )
    assert result.suppressed == 1 and result.added == 0
    assert notes == [(2, "address is on the suppression list; skipped")]


@pytest.mark.database
def test_issue_targets_topics_or_regions(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    people = [
        NewSubscriber("alle@example.org"),
        NewSubscriber("sprache@example.org", topics=("sprache",)),
        NewSubscriber("arbeit@example.org", topics=("arbeit",)),
        NewSubscriber("ems@example.org", topics=("arbeit",), regions=("weser-ems",)),
        NewSubscriber("lg@example.org", regions=("lueneburg",)),
        NewSubscriber("sprache-ems@example.org", topics=("sprache",), regions=("weser-ems",)),
        NewSubscriber(
            "sprache-lg@example.org", topics=("sprache", "kultur"), regions=("lueneburg",)
        ),
    ]
    store.import_subscribers(enumerate(people), IMPORT, confirmed=True)
    sink = Sink()
    campaign, _ = prepare(store, "gezielt", "h", ["sprache"], ["weser-ems"])
    send(store, campaign, build, sink.opener, FAST)
    # No topic (region) choice = every topic (region); both targeted dimensions must match.
    assert sorted(sink.per_address()) == [
        "alle@example.org",
        "sprache-ems@example.org",
        "sprache@example.org",
    ]


@pytest.mark.database
def test_temporary_failure_is_retried_in_the_same_run(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    sink = Sink(failures={"user1@example.org": [TemporaryFailure("451 4.3.0 try later", code=451)]})
    report = send(store, start(store), build, sink.opener, FAST)
    assert report.exit_code == 0
    assert report.counts == {"sent": 3}
    assert [a for a, _ in sink.attempts].count("user1@example.org") == 2
    person = store.report("user1@example.org")
    assert person is not None and person["deliveries"][0]["attempts"] == 2


@pytest.mark.database
def test_retries_wait_for_a_later_run_then_give_up(tmp_path: Path) -> None:
    """Short retries first (`retry_attempts` of them, in the run when due soon), then the
    longer backoff (exit 3), failed at the deadline (docs/requirements.md S6)."""
    store = make_store(tmp_path, 2)
    busy: list[Exception] = [TemporaryFailure("451 busy", code=451) for _ in range(20)]
    sink = Sink(failures={"user0@example.org": busy})
    campaign = start(store)
    clock = [now_utc()]
    options = replace(FAST, retry_attempts=2, clock=lambda: clock[0])
    report = send(store, campaign, build, sink.opener, options)
    assert report.exit_code == 3
    assert report.counts == {"sent": 1, "queued": 1}
    assert len(sink.attempts) == 1 + 3  # user1 once, user0: first try + 2 in-run retries
    assert report.next_attempt is not None
    wait = report.next_attempt - clock[0]
    assert timedelta(minutes=27) <= wait <= timedelta(minutes=33)
    # Not due yet: nothing happens.
    report = send(store, campaign, build, sink.opener, options)
    assert len(sink.attempts) == 4 and report.exit_code == 3
    clock[0] += timedelta(minutes=34)
    report = send(store, campaign, build, sink.opener, options)
    assert len(sink.attempts) == 5 and report.exit_code == 3
    assert report.next_attempt is not None  # the interval doubles: about an hour
    assert timedelta(minutes=54) <= report.next_attempt - clock[0] <= timedelta(minutes=66)
    clock[0] += timedelta(hours=200)
    report = send(store, campaign, build, sink.opener, options)
    assert report.exit_code == 0
    assert report.counts == {"sent": 1, "failed": 1}
    errors = store.ledger.recent_errors(campaign.id)
    assert errors[0]["last_error"] == "gave up after 5 attempts: 451 busy"


@pytest.mark.database
def test_permanent_failure_bounces_and_suppresses(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    gone = PermanentFailure("550 5.1.1 no such user", code=550, enhanced="5.1.1")
    sink = Sink(failures={"user2@example.org": [gone]})
    report = send(store, start(store), build, sink.opener, FAST)
    assert report.exit_code == 0
    assert report.counts == {"sent": 2, "failed": 1}
    person = store.report("user2@example.org")
    assert person is not None
    assert person["status"] == "bounced"
    assert person["suppressed"] == "bounced"
    assert [c["action"] for c in person["consent"]] == ["import", "bounce"]
    assert person["consent"][1]["note"] == "550 5.1.1 no such user"


@pytest.mark.database
def test_policy_rejection_stops_the_campaign(tmp_path: Path) -> None:
    store = make_store(tmp_path, 50)
    policy = PolicyRejection("550 5.7.26 unauthenticated sender", code=550, enhanced="5.7.26")
    sink = Sink(failures={"user0@example.org": [policy]})
    campaign = start(store)
    report = send(store, campaign, build, sink.opener, replace(FAST, concurrency=1))
    assert report.exit_code == 1
    assert report.stopped == (
        "the server rejects our mail as a matter of policy: 550 5.7.26 unauthenticated sender"
    )
    assert report.campaign.status == "paused"
    assert report.counts == {"queued": 50}
    assert sink.delivered == []
    # After the fix, a rerun sends everything.
    report = send(store, campaign, build, sink.opener, FAST)
    assert report.exit_code == 0 and report.counts == {"sent": 50}


@pytest.mark.database
def test_unreachable_server_stops_with_exit_1_and_loses_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path, 30)
    tries: list[int] = []

    def refuse() -> NoReturn:
        tries.append(1)
        raise Unreachable("connection refused by 127.0.0.1:1")

    campaign = start(store)
    report = send(store, campaign, build, refuse, FAST)
    assert report.exit_code == 1
    assert report.stopped == "cannot reach the mail server: connection refused by 127.0.0.1:1"
    assert report.counts == {"queued": 30}
    # No spinning: the threshold of 2 x concurrency failures ends the run (plus those in flight).
    assert 8 <= len(tries) <= 8 + 3
    # No connection is no attempt: nothing waits for a later retry time.
    assert report.next_attempt is None
    with store.reading() as conn:
        counted = conn.execute(sa.select(sa.func.sum(deliveries.c.attempts))).scalar()
    assert counted == 0
    sink = Sink()
    report = send(store, campaign, build, sink.opener, FAST)
    assert report.exit_code == 0 and report.counts == {"sent": 30}


@pytest.mark.database
def test_ambiguous_delivery_is_retried_with_the_same_message_id(tmp_path: Path) -> None:
    """A drop after DATA → ambiguous → retried with the same key (docs/requirements.md S7)."""
    store = make_store(tmp_path, 1)
    dropped = TemporaryFailure("connection lost after DATA", ambiguous=True)
    sink = Sink(failures={"user0@example.org": [dropped]})
    report = send(store, start(store), build, sink.opener, FAST)
    assert report.counts == {"sent": 1}
    keys = [key for _, key in sink.attempts]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert sink.opened == 2  # the dropped connection was replaced


@pytest.mark.database
def test_ambiguous_status_is_recorded_while_waiting(tmp_path: Path) -> None:
    store = make_store(tmp_path, 1)
    dropped = [TemporaryFailure("connection lost after DATA", ambiguous=True)] * 3
    sink = Sink(failures={"user0@example.org": list(dropped)})
    report = send(store, start(store), build, sink.opener, FAST)
    assert report.counts == {"ambiguous": 1}
    assert report.exit_code == 3


def test_rate_limit_paces_the_whole_run() -> None:
    bucket = TokenBucket(200)
    began = time.monotonic()
    for _ in range(41):
        bucket.acquire()
    assert time.monotonic() - began >= 0.19


class FakeClock:
    """A monotonic clock the test moves by hand; `sleep` moves it too."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_slow_down_cuts_once_per_reaction_window_and_recovers_linearly() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, cohort=4, clock=clock, sleep=clock.sleep)
    assert bucket.slow_down() is True
    assert bucket.rate == pytest.approx(70)  # multiplicative decrease: × 0.7
    # More signals within the window, with deliveries between them: the same congestion.
    for _ in range(10):
        assert bucket.slow_down() is False
        bucket.speed_up()
    assert bucket.rate == pytest.approx(70, rel=0.01)
    clock.now += 1.01  # the window (max(1 s, 4 messages at 70/s)) is over
    assert bucket.slow_down() is True
    assert bucket.rate == pytest.approx(49, rel=0.01)
    # Additive increase: about `RECOVERY` seconds of deliveries win the cut back.
    began, delivered = clock.now, 0
    while bucket.rate < 70:
        bucket.acquire()
        bucket.speed_up()
        delivered += 1
    assert clock.now - began == pytest.approx(TokenBucket.RECOVERY, rel=0.15)
    assert delivered > 40 * TokenBucket.RECOVERY  # linear in time: many messages, not a few
    for _ in range(100_000):
        bucket.speed_up()
    assert bucket.rate == 100  # never above the configured rate


def test_a_failed_cohort_drops_to_the_floor_at_once() -> None:
    """Signals from every connection and no delivery between them: the server takes nothing."""
    clock = FakeClock()
    bucket = TokenBucket(200, cohort=4, clock=clock, sleep=clock.sleep)
    assert [bucket.slow_down() for _ in range(4)] == [True, False, False, True]
    assert bucket.rate == TokenBucket.FLOOR
    assert bucket.slow_down() is False  # within the window at the floor: nothing more to cut
    for _ in range(300):  # the server takes mail again: the pace comes back by the cut's step
        bucket.acquire()
        bucket.speed_up()
    assert bucket.rate > 50


def test_repeated_slow_downs_reach_the_floor_and_stay_there() -> None:
    clock = FakeClock()
    bucket = TokenBucket(50, cohort=4, clock=clock, sleep=clock.sleep)
    for _ in range(40):
        bucket.slow_down()
        clock.now += 10
    assert bucket.rate == TokenBucket.FLOOR
    # A steady low pace: one message per second, not a burst.
    began = clock.now
    for _ in range(10):
        bucket.acquire()
    assert clock.now - began == pytest.approx(9, abs=1.1)


def test_an_unlimited_run_slows_to_a_share_of_its_recent_pace() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0, cohort=4, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        bucket.acquire()
        clock.now += 0.01  # 100 messages per second
    bucket.slow_down()
    assert bucket.rate == pytest.approx(70, rel=0.05)
    began = clock.now
    for _ in range(3):
        bucket.acquire()
    assert clock.now - began >= 1.5 / bucket.rate
    for _ in range(10_000):
        bucket.speed_up()
    assert bucket.rate == 0  # unlimited again once the old pace is won back


@pytest.mark.database
@pytest.mark.slow
def test_a_421_deferral_slows_the_run_down(tmp_path: Path) -> None:
    store = make_store(tmp_path, 20)
    busy = [TemporaryFailure("421 4.7.0 Try again later", code=421, enhanced="4.7.0")]
    sink = Sink(failures={"user0@example.org": list(busy)})
    began = time.monotonic()
    report = send(store, start(store), build, sink.opener, replace(FAST, rate=20))
    took = time.monotonic() - began
    # 20 messages at 20/s take 0.95 s; after the 421 the pace halves to 10/s and climbs back.
    assert report.counts == {"sent": 20}
    assert took >= 1.15, took


@pytest.mark.database
def test_rate_option_limits_messages_per_second(tmp_path: Path) -> None:
    store = make_store(tmp_path, 30)
    sink = Sink()
    began = time.monotonic()
    send(store, start(store), build, sink.opener, replace(FAST, rate=100))
    assert time.monotonic() - began >= 0.28
    assert len(sink.delivered) == 30


@pytest.mark.database
def test_rows_of_a_dead_run_are_taken_over_at_once(tmp_path: Path) -> None:
    store = make_store(tmp_path, 10)
    campaign = start(store)
    now = now_utc()
    # A run on this host whose process is gone (pid far above pid_max) claimed 4 rows.
    import socket

    dead = f"{socket.gethostname()}:999999999:abcd"
    store.ledger.claim(campaign.id, dead, 4, now, now + timedelta(hours=1))
    sink = Sink()
    report = send(store, campaign, build, sink.opener, FAST)
    assert report.resumed == 4
    assert report.counts == {"sent": 10}


@pytest.mark.database
@pytest.mark.slow
def test_a_run_waits_for_the_lease_of_another_hosts_rows_and_takes_them_over(
    tmp_path: Path,
) -> None:
    """Another host's run claimed a row and died: the run waits out its lease, then sends it."""
    store = make_store(tmp_path, 3)
    campaign = start(store)
    now = now_utc()
    store.ledger.claim(campaign.id, "other-host:1:abcd", 1, now, now + timedelta(seconds=1))
    sink = Sink()
    began = time.monotonic()
    report = send(store, campaign, build, sink.opener, FAST)
    assert report.counts == {"sent": 3} and report.exit_code == 0
    assert report.resumed == 1
    assert time.monotonic() - began >= 0.5
    assert len(sink.delivered) == 3


@pytest.mark.database
def test_a_live_run_keeps_its_rows_by_renewing_its_lease(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    campaign = start(store)
    now = now_utc()
    store.ledger.claim(campaign.id, "me", 2, now, now + timedelta(seconds=1))
    assert store.ledger.renew(campaign.id, "me", now + timedelta(minutes=5)) == 2
    later = now + timedelta(minutes=1)
    assert store.ledger.release_orphans(campaign.id, lambda owner: False, later) == 0
    assert store.ledger.release_orphans(campaign.id, lambda owner: True, later, keep="me") == 0
    assert store.ledger.unfinished_elsewhere(campaign.id, "me", later) == 0
    assert store.ledger.unfinished_elsewhere(campaign.id, "you", later) == 2


@pytest.mark.database
@pytest.mark.slow
def test_the_wait_for_a_stuck_run_elsewhere_is_bounded(tmp_path: Path) -> None:
    """Rows another host holds and renews, with no progress for a lease: leave them be."""
    store = make_store(tmp_path, 3)
    campaign = start(store)
    now = now_utc()
    store.ledger.claim(campaign.id, "other-host:1:abcd", 1, now, now + timedelta(minutes=5))
    keeper = ClaimKeeper(store.ledger, campaign.id, "me", timedelta(seconds=0.6), now_utc, 0.0)
    began = time.monotonic()
    stop = threading.Event()
    polls = 0
    while keeper.wait_for_others(stop):
        polls += 1  # each waits POLL seconds: a lease's worth of them, at most
        assert polls <= 0.6 / POLL + 1
    assert time.monotonic() - began >= 0.6
    assert keeper.taken_over == 0


@pytest.mark.database
@pytest.mark.slow
def test_a_run_that_cannot_renew_its_lease_stops_before_it_could_send_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stops taking the heartbeat (an outage of the renewals only): once most of a
    lease has passed without one, another worker may own these rows, so the run stops sending.
    Nothing is lost: a later run sends the rest, each person once."""
    store = make_store(tmp_path, 40)
    campaign = start(store)

    def outage(cid: int, owner: str, until: object) -> int:
        raise sa.exc.OperationalError("UPDATE deliveries", {}, Exception("server closed"))

    monkeypatch.setattr(store.ledger, "renew", outage)
    sink = Sink(before_send=lambda _: time.sleep(0.05))
    lease = timedelta(seconds=1)
    began = time.monotonic()
    report = send(store, campaign, build, sink.opener, replace(FAST, concurrency=1, lease=lease))
    took = time.monotonic() - began
    assert report.stopped is not None and "no claim renewal reached the database" in report.stopped
    assert report.exit_code == 1
    assert took >= 0.8  # it sent while the lease was safe, then stopped
    first = len(sink.delivered)
    assert 0 < first < 40
    monkeypatch.undo()
    again = send(store, campaign, build, sink.opener, replace(FAST, lease=lease))
    assert again.exit_code == 0 and again.counts == {"sent": 40}
    assert set(sink.per_address().values()) == {1} and len(sink.per_address()) == 40


@pytest.mark.database
@pytest.mark.slow
def test_the_lease_is_checked_after_a_hanging_lookup_right_before_the_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suppression lookup hangs (a network split) for longer than the lease while no
    renewal gets through: when it returns, the row may be someone else's: nothing goes out."""
    store = make_store(tmp_path, 5)
    campaign = start(store)

    def outage(cid: int, owner: str, until: object) -> int:
        raise sa.exc.OperationalError("UPDATE deliveries", {}, Exception("server closed"))

    probe = store.ledger.suppression_probe

    class Hanging:
        def __init__(self) -> None:
            self.inner = probe()

        def reason(self, key: str) -> str | None:
            time.sleep(1.3)
            return self.inner.reason(key)

        def close(self) -> None:
            self.inner.close()

    monkeypatch.setattr(store.ledger, "renew", outage)
    monkeypatch.setattr(store.ledger, "suppression_probe", Hanging)
    sink = Sink()
    options = replace(FAST, concurrency=1, lease=timedelta(seconds=1))
    report = send(store, campaign, build, sink.opener, options)
    assert report.stopped is not None and "no claim renewal" in report.stopped
    assert sink.delivered == []


@pytest.mark.database
@pytest.mark.slow
def test_slow_renewals_that_succeed_never_stop_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each renewal waits a quarter of the lease behind another writer and then succeeds:
    the next one starts a third of a lease after the last one started, so the run holds.

    A 3-second lease: the widest gap between two renewals' starts is then 1.75 s against
    the 2.4 s `holds` allows, a margin no busy test machine uses up (with a 1-second lease
    it was 0.2 s, and a loaded run stopped once)."""
    store = make_store(tmp_path, 40)
    campaign = start(store)
    renew = store.ledger.renew
    renewals: list[float] = []

    def slow(cid: int, owner: str, until: datetime) -> int:
        time.sleep(0.75)
        renewals.append(time.monotonic())
        return renew(cid, owner, until)

    monkeypatch.setattr(store.ledger, "renew", slow)
    # 40 messages take at least 5.2 s: four renewals or more end within the run.
    sink = Sink(before_send=lambda _: time.sleep(0.13))
    options = replace(FAST, concurrency=1, lease=timedelta(seconds=3))
    report = send(store, campaign, build, sink.opener, options)
    assert report.stopped is None and report.exit_code == 0
    assert len(renewals) >= 4 and len(sink.delivered) == 40


@pytest.mark.database
def test_changed_content_needs_force(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    prepare(store, "ausgabe-1", "hash-1", [], [])
    with pytest.raises(CampaignChanged) as caught:
        prepare(store, "ausgabe-1", "hash-2", [], [])
    assert str(caught.value) == (
        "issue 'ausgabe-1' changed after sending started (0 already sent); check the change, "
        "then run again with --force to send the new version to the rest"
    )
    campaign, created = prepare(store, "ausgabe-1", "hash-2", [], [], force=True)
    assert not created
    changed = store.ledger.campaign("ausgabe-1")
    assert changed is not None and changed.content_hash == "hash-2"


@pytest.mark.database
def test_erased_subscriber_is_skipped(tmp_path: Path) -> None:
    store = make_store(tmp_path, 3)
    campaign = start(store)
    assert store.erase("user1@example.org") == {"subscriber": 1, "consent": 1, "deliveries": 1}
    sink = Sink()
    report = send(store, campaign, build, sink.opener, FAST)
    assert report.counts == {"sent": 2, "skipped": 1}
    assert "user1@example.org" not in sink.per_address()


@pytest.mark.database
def test_an_address_that_cannot_be_written_fails_without_a_bounce(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)

    def picky(recipient: Recipient) -> OutgoingMessage:
        if recipient.email == "user1@example.org":
            raise PermanentFailure("cannot send to 'user1@example.org': not a plain ASCII address")
        return build(recipient)

    sink = Sink()
    report = send(store, start(store), picky, sink.opener, FAST)
    # Failed with its reason and counted: a send that skipped someone is not a success.
    assert report.exit_code == 1 and report.unsendable == 1
    assert report.counts == {"sent": 1, "failed": 1}
    person = store.report("user1@example.org")
    assert person is not None and person["status"] == "active" and person["suppressed"] is None


@pytest.mark.database
def test_a_bug_in_a_worker_stops_the_run_instead_of_hanging(tmp_path: Path) -> None:
    store = make_store(tmp_path, 20)

    def broken(recipient: Recipient) -> OutgoingMessage:
        raise KeyError("template slot")

    campaign = start(store)
    with pytest.raises(KeyError):
        send(store, campaign, broken, Sink().opener, FAST)
    counts = store.ledger.counts(campaign.id)
    assert counts.get("sent", 0) == 0 and counts.get("sending", 0) >= 1


class _StopWhileRecording:
    """An outcome writer that asks the run to stop while it records the first outcome."""

    def __init__(self, inner: OutcomeWriter, stop: threading.Event) -> None:
        self.inner, self.stop = inner, stop

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        self.stop.set()
        self.inner.write(outcomes, now)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.database
def test_a_stop_while_a_message_waits_for_the_record_before_it_leaves_it_unsent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second message is held before its final "." until the first one's outcome is
    recorded; a shutdown asked for meanwhile ends the connection, so the server discards it,
    and its row goes back to the queue: the next run sends it, and everyone gets one."""
    store = make_store(tmp_path, 6)
    campaign = start(store)
    stop = threading.Event()
    writer = store.ledger.writer
    monkeypatch.setattr(
        store.ledger,
        "writer",
        lambda source, owner: _StopWhileRecording(writer(source, owner), stop),
    )
    handler = Handler(pipelining=True)
    with smtp_server(handler) as port:

        def opener() -> SmtpTransport:
            return SmtpTransport("127.0.0.1", port, timeout=5)

        report = send(store, campaign, build, opener, replace(FAST, concurrency=1, stop=stop))
        assert report.interrupted
        assert [r.rcpt_tos for r in handler.received] == [["user0@example.org"]]
        # The second message had begun (it was held on the wire), then was discarded.
        assert handler.commands.count("MAIL") >= 2
        assert report.counts == {"sent": 1, "queued": 5}
        monkeypatch.undo()
        again = send(store, campaign, build, opener, FAST)
    assert again.counts == {"sent": 6}
    got = sorted(r.rcpt_tos[0] for r in handler.received)
    assert got == sorted(f"user{n}@example.org" for n in range(6))


class _SlowFirstWriter:
    """The first writer a run opens holds its first commit until the second writer has
    recorded four outcomes while it held (or five seconds passed); `released` says which came
    first. The second writer's first write waits until the first one holds, so that the
    second connection cannot finish its share before the first one's commit is held."""

    def __init__(self, inner: OutcomeWriter, number: int, shared: dict[str, object]) -> None:
        self.inner, self.number, self.shared = inner, number, shared

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        go, holding = self.shared["go"], self.shared["holding"]
        assert isinstance(go, threading.Event) and isinstance(holding, threading.Event)
        if self.number == 0 and not go.is_set():
            holding.set()
            self.shared["released"] = go.wait(5)
        if self.number == 1:
            holding.wait(5)
        self.inner.write(outcomes, now)
        if self.number == 1:
            self.shared["written"] = int(str(self.shared["written"])) + len(outcomes)
            if int(str(self.shared["written"])) >= 4:
                go.set()

    def close(self) -> None:
        self.inner.close()


@pytest.mark.database
def test_a_slow_commit_holds_only_its_own_connection_where_writes_go_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each connection's outcomes have a writer of their own: one connection
    waiting for its commit does not hold the others' messages (one recorder for all made
    every outcome wait for the commit in progress, whoever's it was). Each connection still
    sends its next message only once the outcome before is recorded."""
    store = make_store(tmp_path, 12)
    assert store.ledger.parallel_writes() == (store.engine.dialect.name != "sqlite")
    campaign = start(store)
    writer = store.ledger.writer
    shared: dict[str, object] = {
        "go": threading.Event(),
        "holding": threading.Event(),
        "written": 0,
        "released": None,
    }
    opened: list[int] = []

    def slow_first(source: str, owner: str) -> _SlowFirstWriter:
        opened.append(len(opened))
        return _SlowFirstWriter(writer(source, owner), opened[-1], shared)

    monkeypatch.setattr(store.ledger, "writer", slow_first)
    # Side by side on either database here: SQLite takes the second writer's commits in turn.
    monkeypatch.setattr(store.ledger, "parallel_writes", lambda: True)
    sink = Sink()
    report = send(store, campaign, build, sink.opener, replace(FAST, concurrency=2))
    assert report.counts == {"sent": 12}
    assert opened == [0, 1]
    # The other connection went on sending while the first one's commit was held.
    assert shared["released"] is True
    assert sorted(sink.per_address().values()) == [1] * 12


def _send_pipelined(
    store: Store, campaign: Campaign, handler: Handler, options: SendOptions
) -> SendReport:
    """`send` over real SMTP to `handler` (on 127.0.0.1), one connection at a time."""
    with smtp_server(handler) as port:

        def opener() -> SmtpTransport:
            return SmtpTransport("127.0.0.1", port, timeout=5)

        return send(store, campaign, build, opener, replace(options, concurrency=1))


class _RecordsAtEachDot(Handler):
    """Notes, at each message's end of DATA, how many deliveries the ledger has as sent."""

    def __init__(self, store: Store, campaign: Campaign) -> None:
        super().__init__(pipelining=True)
        self.store, self.campaign = store, campaign
        self.sent_at_dot: list[int] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        counts = self.store.ledger.counts(self.campaign.id)
        self.sent_at_dot.append(counts.get("sent", 0))
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.database
def test_with_pipelining_each_dot_waits_for_the_outcome_of_the_message_before(
    tmp_path: Path,
) -> None:
    """The reply to a message's "." is read behind the next message's commands; the next
    message's "." still goes only once the message before is recorded as sent (at most one
    message per connection sent and unrecorded), and every outcome lands."""
    store = make_store(tmp_path, 12)
    campaign = start(store)
    handler = _RecordsAtEachDot(store, campaign)
    report = _send_pipelined(store, campaign, handler, FAST)
    assert report.counts == {"sent": 12}
    assert handler.sent_at_dot == list(range(12))


@pytest.mark.database
def test_a_refusal_told_behind_the_next_message_pauses_the_campaign_before_that_one_goes(
    tmp_path: Path,
) -> None:
    """The fourth message is refused at its end of DATA; the reply is read with the fifth
    message's commands on their way. The campaign pauses, the fifth message's "." is withheld
    (the server discards it), and every row but the three sent stays queued."""
    store = make_store(tmp_path, 12)
    campaign = start(store)
    handler = Handler(pipelining=True)
    handler.data_replies["user3@example.org"] = "554 5.7.1 Message rejected as spam"
    report = _send_pipelined(store, campaign, handler, FAST)
    assert report.exit_code == 1 and report.campaign.status == "paused"
    assert report.stopped is not None and "554 5.7.1 Message rejected as spam" in report.stopped
    assert report.counts == {"sent": 3, "queued": 9}
    assert [r.rcpt_tos[0] for r in handler.received] == [f"user{n}@example.org" for n in range(4)]
    # The fifth message had begun: its commands went behind the fourth's ".".
    assert handler.mail_commands == 5


class _RecordsAtEachMail(Handler):
    """Notes, at each MAIL command, how many deliveries the ledger has as sent."""

    def __init__(self, store: Store, campaign: Campaign) -> None:
        super().__init__(pipelining=True)
        self.store, self.campaign = store, campaign
        self.sent_at_mail: list[int] = []

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.sent_at_mail.append(self.store.ledger.counts(self.campaign.id).get("sent", 0))
        return await super().handle_MAIL(server, session, envelope, address, options)


@pytest.mark.database
def test_a_paced_run_records_each_result_before_it_waits_for_the_next_slot(
    tmp_path: Path,
) -> None:
    """At 5 messages a second the wait for a slot (0.2 s) is far longer than the server's
    reply: each message's reply is read, and its outcome recorded, before that wait, not
    behind the next message's commands."""
    store = make_store(tmp_path, 6)
    campaign = start(store)
    handler = _RecordsAtEachMail(store, campaign)
    report = _send_pipelined(store, campaign, handler, replace(FAST, rate=5))
    assert report.counts == {"sent": 6}
    assert handler.sent_at_mail == list(range(6))
