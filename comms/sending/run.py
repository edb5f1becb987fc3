"""The send run machinery: a dispatcher claims batches, N workers send at a rate and retry."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from comms.core.clock import now_utc
from comms.core.errors import (
    CommsError,
    DeliveryError,
    EmptyView,
    MessageError,
    PermanentFailure,
    PolicyRejection,
    TemporaryFailure,
    Unreachable,
)
from comms.core.process import owner_id
from comms.core.settings import Delivery
from comms.db.ledger import Campaign
from comms.db.outage import Patience, Stopped
from comms.db.outcomes import Claimed, Outcome
from comms.db.status import FINAL, DeliveryStatus, SubscriberStatus
from comms.mail.message import OutgoingMessage, Recipient
from comms.mail.replies import asks_to_slow_down
from comms.mail.transports import Transport
from comms.sending.budget import SharedBudget
from comms.sending.claims import ClaimKeeper
from comms.sending.ports import SendLedger, SuppressionCheck
from comms.sending.recorder import Recorder
from comms.sending.throttle import TokenBucket

Builder = Callable[[Recipient], OutgoingMessage]
Opener = Callable[[], Transport]
Progress = Callable[[int], None]
#: How long one in-run retry may wait at most before it is left to a later run.
IN_RUN_MAX_WAIT = 60.0
#: Permanent failures in a row, with no delivery in between, after which the campaign pauses:
#: so many refused addresses at once point at the server or our mail, not at the addresses.
BOUNCE_BREAKER = 10


class _HandBack(Exception):
    """The run stopped while a message was held: it stays unsent, its row goes back."""


class _LeaseLost(Exception):
    """The claims' lease may have run out while a message was held: it stays unsent."""


class _Lane:
    """One worker's connection and where its outcomes go: the transport, the recorder, and
    `last`, the outcome a message must wait for before its final "." (the latest one this
    worker submitted; a result the transport reports late moves it on meanwhile)."""

    __slots__ = ("last", "recorder", "transport")

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.last = 0
        self.transport: Transport | None = None


class _Gate:
    """What a transport calls right before a message goes for good: `Run.gate` once the
    lane's `last` outcome is durable. `ready()` tells the transport whether that is so already,
    so that it need not hold the message for a wait that will not come. Both read `last` when
    called: the outcome of the message before may be submitted during this one's `send`."""

    __slots__ = ("lane", "run")

    def __init__(self, run: Run, lane: _Lane) -> None:
        self.run, self.lane = run, lane

    def __call__(self) -> None:
        self.run.gate(self.lane.recorder, self.lane.last)

    def ready(self) -> bool:
        """Whether the call will not wait: outcome `last` is durable already (if not, the
        call commits it, while the server reads the body sent before it)."""
        return self.lane.recorder.durable(self.lane.last)


@dataclass(frozen=True)
class SendOptions:
    """Pacing and retry of one run, in the units the run uses.

    Made from the `delivery` settings by `of`: the defaults live there alone.
    """

    concurrency: int
    rate: float
    batch_size: int
    retry_attempts: int
    retry_backoff: float
    retry_interval: timedelta
    retry_max_interval: timedelta
    give_up_after: timedelta
    lease: timedelta
    clock: Callable[[], datetime] = now_utc
    #: Set from outside (a signal, the scheduler's shutdown) to end the run: the messages in
    #: flight finish and are recorded, every other claimed row goes back to the queue.
    stop: threading.Event | None = None

    @property
    def claim_size(self) -> int:
        """Rows per claim: `batch_size`, fewer when rate-limited (no more than goes out well
        within one lease: what a worker holds when it dies waits that long for another)."""
        if self.rate <= 0:
            return self.batch_size
        within = int(self.rate * self.lease.total_seconds() / 4)
        return max(self.concurrency, min(self.batch_size, within))

    @classmethod
    def of(
        cls, delivery: Delivery, concurrency: int | None = None, rate: float | None = None
    ) -> SendOptions:
        """Options from the `delivery` settings, with the command line's overrides."""
        return cls(
            concurrency=concurrency or delivery.concurrency,
            rate=delivery.rate if rate is None else rate,
            batch_size=delivery.batch_size,
            retry_attempts=delivery.retry_attempts,
            retry_backoff=delivery.retry_backoff_seconds,
            retry_interval=timedelta(minutes=delivery.retry_interval_minutes),
            retry_max_interval=timedelta(hours=delivery.retry_max_interval_hours),
            give_up_after=timedelta(hours=delivery.give_up_after_hours),
            lease=timedelta(seconds=delivery.lease_seconds),
        )


class Run:
    """One `send` run over one campaign: a dispatcher, N workers and a ledger writer."""

    def __init__(
        self,
        ledger: SendLedger,
        campaign: Campaign,
        build: Builder,
        opener: Opener,
        options: SendOptions,
        progress: Progress | None,
    ) -> None:
        self.ledger, self.campaign, self.build, self.opener = ledger, campaign, build, opener
        self.options = options
        self.progress = progress
        self.owner = owner_id()
        # SimpleQueue: put, get and qsize in C, without queue.Queue's Python-level locks and
        # conditions (a message is one put and one get; the workers and the dispatcher share it).
        self.jobs: queue.SimpleQueue[Claimed | None] = queue.SimpleQueue()
        #: Set by a worker that leaves fewer than a claim's worth of jobs queued: the
        #: dispatcher sleeps on it rather than polling the queue.
        self.hungry = threading.Event()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        #: Every database use of the run waits out an outage (until the run is asked to stop).
        self.patience = Patience(f"send {campaign.slug}", self.asked_to_stop)
        # Outcomes of messages that went out are kept through an outage, for at most a lease:
        # after that another worker may own the rows. Where the database commits side by side
        # (PostgreSQL) each connection's outcomes get a writer of their own, so that none
        # waits for a commit that began before its outcome came (SQLite has one writer at a
        # time: one recorder commits for all, in groups).
        writers = options.concurrency if ledger.parallel_writes() else 1
        self.recorders = [
            Recorder(
                ledger.writer(f"send {campaign.slug}", self.owner),
                Patience(f"send {campaign.slug}", limit=options.lease.total_seconds()),
            )
            for _ in range(writers)
        ]
        # A stop wakes the workers that wait for their slot (at a low pace, seconds away).
        self.bucket = TokenBucket(options.rate, cohort=options.concurrency, sleep=self.stop.wait)
        # One send rate for every worker of the campaign, whatever host it runs on.
        self.budget = SharedBudget(self.reserve, self.bucket, options.rate, sleep=self.stop.wait)
        self.keeper = ClaimKeeper(
            ledger,
            campaign.id,
            self.owner,
            options.lease,
            options.clock,
            IN_RUN_MAX_WAIT,
            self.patience,
        )
        self.stopped: str | None = None
        self.in_flight = 0
        self.retry_at: dict[int, float] = {}  # delivery id → monotonic due time (in-run)
        self.done: dict[str, int] = {}
        #: Deliveries failed because no message could be built or carried for the address.
        self.unsendable = 0
        self.connection_failures = 0
        self.bounces_in_row = 0
        #: Stopped for a reason only a person can fix: the campaign is marked `paused`.
        self.paused = False
        #: Ended from outside (`SendOptions.stop`, Ctrl+C): not a failure of the campaign.
        self.interrupted = False
        self.crash: BaseException | None = None

    # -- workers ---------------------------------------------------------------------------

    def asked_to_stop(self) -> bool:
        """True once the run stops, or is asked to from outside (ends waits for the database)."""
        outside = self.options.stop
        return self.stop.is_set() or (outside is not None and outside.is_set())

    def reserve(self, count: int, rate: float, now: float) -> float:
        """Reserve slots of the campaign's send budget, through a database outage."""
        cid = self.campaign.id
        return self.patience.call(lambda: self.ledger.reserve(cid, count, rate, now))

    def halt(self, reason: str, pause: bool = False) -> None:
        """Stop the campaign: no new claims; claimed rows go back to the queue."""
        with self.lock:
            if self.stopped is None:
                self.stopped = reason
                self.paused = pause
        self.stop.set()

    def interrupt(self) -> None:
        """End the run from outside: no new claims, claimed rows go back to the queue; the
        campaign is not stopped (what is left is due at once for the next run)."""
        with self.lock:
            if self.stopped is None:
                self.interrupted = True
        self.stop.set()

    def reject(self, item: Claimed, exc: PolicyRejection) -> Outcome:
        """Pause for a reply about our mail or session: hand the row back, blame nobody."""
        enhanced = exc.enhanced or ""
        if exc.code is None or enhanced.startswith("5.7.") or exc.code == 535:
            reason = f"the server rejects our mail as a matter of policy: {exc}"
        else:
            reason = (
                "the server refuses our message or session, not the address "
                f"(nobody was marked bounced): {exc}"
            )
        self.halt(reason, pause=True)
        return Outcome(item.delivery_id, DeliveryStatus.QUEUED, error=str(exc), attempted=False)

    def bounce(self, item: Claimed, message_id: str, exc: PermanentFailure) -> Outcome:
        """A bounce, unless too many came in a row: then pause and hand the row back."""
        with self.lock:
            self.connection_failures = 0
            self.bounces_in_row += 1
            tripped = self.bounces_in_row >= BOUNCE_BREAKER
        if tripped:
            self.halt(
                f"{BOUNCE_BREAKER} recipients in a row were refused with no delivery in "
                "between, which points at the server or our mail rather than the addresses; "
                f"the rest were not marked bounced (last reply: {exc})",
                pause=True,
            )
            return Outcome(item.delivery_id, DeliveryStatus.QUEUED, error=str(exc), attempted=False)
        return Outcome(item.delivery_id, DeliveryStatus.FAILED, message_id, str(exc), bounce=item)

    def worker(self, number: int) -> None:
        probe = self.ledger.suppression_probe()
        # The connection's own recorder: its outcomes are committed in the order it sends.
        lane = _Lane(self.recorders[number % len(self.recorders)])
        try:
            refill = self.options.claim_size
            while True:
                try:
                    item = self.jobs.get_nowait()
                except queue.Empty:
                    # Nothing to send next: the last message's result is not left waiting.
                    self.flush(lane)
                    item = self.jobs.get()
                if item is None:
                    break
                if not self.hungry.is_set() and self.jobs.qsize() < refill:
                    self.hungry.set()
                if self.asked_to_stop():
                    self.settle(
                        lane,
                        item,
                        Outcome(item.delivery_id, DeliveryStatus.QUEUED, attempted=False),
                    )
                    continue
                outcome = self.deliver(item, probe, lane)
                if outcome is not None:
                    self.settle(lane, item, outcome)
        except CommsError as exc:
            self.halt(str(exc))
        except BaseException as exc:
            # A bug must not leave the dispatcher waiting for this worker forever; the row it
            # held stays `sending` and is taken over by the next run (as after a crash).
            self.crash = exc
            self.halt(f"unexpected error: {exc!r}")
        finally:
            probe.close()
            if lane.transport is not None:
                try:
                    lane.transport.close()  # tells what it owes first
                except CommsError as exc:
                    self.halt(str(exc))
                except BaseException as exc:  # a bug in recording what it told
                    self.crash = self.crash or exc
                    self.halt(f"unexpected error: {exc!r}")

    def flush(self, lane: _Lane) -> None:
        """Have the lane's transport report the result it still owes."""
        if lane.transport is not None:
            lane.transport.flush()

    def settle(self, lane: _Lane, item: Claimed, outcome: Outcome) -> None:
        """Submit one delivery's outcome to the lane's recorder and count it."""
        lane.last = lane.recorder.submit(outcome)
        with self.lock:
            self.in_flight -= 1
            final = outcome.status in FINAL or item.delivery_id not in self.retry_at
            if outcome.attempted and final:
                self.done[outcome.status] = self.done.get(outcome.status, 0) + 1

    def deliver(self, item: Claimed, probe: SuppressionCheck, lane: _Lane) -> Outcome | None:
        """Send one claimed delivery once the lane's outcome before it is recorded; its
        outcome, or None when the transport reports the result later (`settle` then)."""
        if item.email is None or item.uid is None or item.key is None:
            return Outcome(item.delivery_id, DeliveryStatus.SKIPPED, error="subscriber erased")
        if item.subscriber_status != SubscriberStatus.ACTIVE:
            note = f"subscriber {item.subscriber_status}"
            return Outcome(item.delivery_id, DeliveryStatus.SKIPPED, error=note)
        try:
            message = self.build(
                Recipient(
                    item.uid,
                    item.email,
                    item.name,
                    item.language,
                    item.delivery_id,
                    item.link_version,
                    item.regions,
                    item.topics,
                )
            )
        except EmptyView as exc:
            # A digest issue with nothing for this reader's regions and topics: no intro-only
            # mail; recorded like other skips, so `comms status` counts it.
            return Outcome(item.delivery_id, DeliveryStatus.SKIPPED, error=str(exc))
        except (PermanentFailure, MessageError) as exc:
            # This address cannot be written into a message: final for this delivery, but no
            # bounce, as no server has refused it.
            return self.unsendable_outcome(item, exc)
        back = Outcome(item.delivery_id, DeliveryStatus.QUEUED, attempted=False)
        try:
            if self.bucket.rate > 0:
                # Paced: the wait for a slot outlasts the server's reply; the result of the
                # message before is recorded first, not after the wait.
                self.flush(lane)
            self.budget.acquire()
            if self.stop.is_set():  # stopped while waiting for the slot: hand the row back
                return back
            # Right before sending (docs/requirements.md S12, E9).
            reason = self.patience.call(partial(probe.reason, item.key))
        except Stopped:  # asked to stop while the database was away
            return back
        if reason is not None:
            return Outcome(item.delivery_id, DeliveryStatus.SKIPPED, error=f"suppressed: {reason}")
        mid = message.message_id
        try:
            if lane.transport is None:
                lane.transport = self.opener()
            # The transport holds the message right before it goes for good (SMTP: all but the
            # final ".") until the gate says the lane's last outcome is durable: at most one
            # transmitted but unrecorded message per connection, and the wait (the commit)
            # overlaps the server's reading of the body. The result may come later (SMTP:
            # read once the next message's commands are on their way): `then` records it.
            later = lane.transport.send(
                message.envelope_from,
                message.recipient,
                message.data,
                message.key,
                _Gate(self, lane),
                message.wire,
                then=lambda failure: self.settle(lane, item, self.result(item, mid, failure)),
            )
        except _HandBack:  # stopped while the outcome before was being recorded
            return back
        except _LeaseLost:
            return self.lease_lost(item)
        except MessageError as exc:  # e.g. a UTF-8 address and a server without SMTPUTF8
            return self.unsendable_outcome(item, exc)
        except (TemporaryFailure, OSError) as exc:
            error = exc if isinstance(exc, DeliveryError) else Unreachable(str(exc))
            if error.code is None or error.ambiguous:
                if lane.transport is not None:
                    lane.transport.close()  # the connection is likely dead: a new one next time
                lane.transport = None
            return self.result(item, mid, error)
        except DeliveryError as exc:
            return self.result(item, mid, exc)
        except CommsError as exc:
            self.halt(str(exc))
            return Outcome(item.delivery_id, DeliveryStatus.QUEUED, error=str(exc), attempted=False)
        return None if later else self.result(item, mid, None)

    def result(self, item: Claimed, message_id: str, failure: DeliveryError | None) -> Outcome:
        """The outcome of a message the transport took (`failure` None) or refused."""
        if failure is None:
            with self.lock:
                self.connection_failures = self.bounces_in_row = 0
            self.bucket.speed_up()
            return Outcome(item.delivery_id, DeliveryStatus.SENT, message_id)
        if isinstance(failure, PolicyRejection):
            return self.reject(item, failure)
        if isinstance(failure, PermanentFailure):
            return self.bounce(item, message_id, failure)
        if asks_to_slow_down(failure):
            self.bucket.slow_down()
        return self.retry(item, message_id, failure)

    def gate(self, recorder: Recorder, last: int) -> None:
        """Let a held message go once outcome `last` is durable and the run still may send."""
        recorder.wait(last)
        if self.asked_to_stop():  # a shutdown asked for meanwhile, too: the message stays here
            raise _HandBack
        # Last, as the lookup, the connection and the wait above may each have hung for long.
        if not self.keeper.holds():
            raise _LeaseLost

    def lease_lost(self, item: Claimed) -> Outcome:
        """Stop the run and hand the row back: another worker may own it by now."""
        self.halt(
            "no claim renewal reached the database for most of a lease "
            "(delivery.lease_seconds): stopped, as another worker may have taken these rows "
            "over and a message must not go out twice"
        )
        return Outcome(item.delivery_id, DeliveryStatus.QUEUED, attempted=False)

    def unsendable_outcome(self, item: Claimed, exc: CommsError) -> Outcome:
        """`failed` with the reason, counted: `comms send` must not pass it over as success."""
        with self.lock:
            self.unsendable += 1
        return Outcome(item.delivery_id, DeliveryStatus.FAILED, error=str(exc))

    def retry(self, item: Claimed, message_id: str, exc: DeliveryError) -> Outcome:
        """Schedule a temporary failure: soon within this run, later after that, or give up."""
        opts = self.options
        now = opts.clock()
        status = DeliveryStatus.AMBIGUOUS if exc.ambiguous else DeliveryStatus.QUEUED
        give_up = Outcome(
            item.delivery_id,
            DeliveryStatus.FAILED,
            message_id,
            f"gave up after {item.attempts + 1} attempts: {exc}",
        )
        if now >= item.queued_at + opts.give_up_after:
            return give_up
        if isinstance(exc, Unreachable):
            # No connection, so nothing of this delivery happened: no attempt, no later retry
            # time; the row is due again at once (in this run or the next). The run cannot
            # spin: only a successful delivery resets the count that stops it.
            with self.lock:
                self.connection_failures += 1
                if self.connection_failures >= max(3, 2 * opts.concurrency):
                    self.stopped = self.stopped or f"cannot reach the mail server: {exc}"
                    self.stop.set()
                # Keeps the dispatcher claiming until the recorder has handed the row back.
                self.retry_at[item.delivery_id] = time.monotonic()
            return Outcome(item.delivery_id, DeliveryStatus.QUEUED, error=str(exc), attempted=False)
        # The first retries wait `retry_backoff` (doubled each time), the later ones
        # `retry_interval` (doubled up to `retry_max_interval`); jitter spreads them out.
        if item.attempts < opts.retry_attempts:
            delay = opts.retry_backoff * 2**item.attempts * random.uniform(0.8, 1.2)
        else:
            later = opts.retry_interval * 2 ** (item.attempts - opts.retry_attempts)
            delay = min(later, opts.retry_max_interval).total_seconds() * random.uniform(0.9, 1.1)
        delay = max(delay, exc.retry_after or 0.0)
        due = now + timedelta(seconds=delay)
        if due > item.queued_at + opts.give_up_after:
            return give_up
        if delay <= IN_RUN_MAX_WAIT:
            # Due soon: this run takes it again when the time comes, sending the others
            # meanwhile; a longer wait is left to a later run (the scheduler's retry pass).
            with self.lock:
                self.retry_at[item.delivery_id] = time.monotonic() + delay
        return Outcome(item.delivery_id, status, message_id, str(exc), due)

    # -- dispatcher ------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Claim batches while workers need them; end when nothing is due within this run."""
        opts = self.options
        size = opts.claim_size
        while not self.stop.is_set():
            if opts.stop is not None and opts.stop.is_set():
                self.interrupt()
                break
            if self.jobs.qsize() >= size:
                self.hungry.clear()
                if self.jobs.qsize() >= size:  # no worker took one since: sleep until one does
                    self.hungry.wait(0.05)
                continue
            try:
                claimed = self.patience.call(partial(self.claim, size))
            except Stopped:
                if opts.stop is not None and opts.stop.is_set():
                    self.interrupt()
                break
            with self.lock:
                for item in claimed:
                    self.retry_at.pop(item.delivery_id, None)
                # A retry someone else took (another worker process) must not keep us waiting.
                stale = time.monotonic() - IN_RUN_MAX_WAIT
                self.retry_at = {k: v for k, v in self.retry_at.items() if v > stale}
                self.in_flight += len(claimed)
                idle = self.in_flight == 0
                waits = list(self.retry_at.values())
            for item in claimed:
                self.jobs.put(item)
            if claimed:
                continue
            if idle and not waits:
                # Other workers' rows: wait for them, take them over when their owner died.
                if self.keeper.wait_for_others(self.stop):
                    continue
                if opts.stop is not None and opts.stop.is_set():
                    self.interrupt()
                return
            time.sleep(min(0.05, max(0.0, min(waits, default=0.0) - time.monotonic())) or 0.005)

    def claim(self, size: int) -> list[Claimed]:
        """Claim up to `size` due rows for this run, leased from now."""
        now = self.options.clock()
        return self.ledger.claim(self.campaign.id, self.owner, size, now, now + self.options.lease)

    def report_progress(self, stop: threading.Event) -> None:
        while not stop.wait(0.1):
            self.tick()

    def tick(self) -> None:
        if self.progress is not None:
            with self.lock:
                done = sum(self.done.values())
            self.progress(done)

    def execute(self) -> dict[str, int]:
        """Run workers and dispatcher to the end; returns outcomes of this run by status."""
        for recorder in self.recorders:
            recorder.start()
        self.keeper.start()
        workers = [
            threading.Thread(target=self.worker, args=(n,), name=f"comms-send-{n}", daemon=True)
            for n in range(self.options.concurrency)
        ]
        for thread in workers:
            thread.start()
        ticking = threading.Event()
        ticker = threading.Thread(target=self.report_progress, args=(ticking,), daemon=True)
        ticker.start()
        try:
            self.dispatch()
        except KeyboardInterrupt:
            self.interrupt()
        finally:
            for _ in workers:
                self.jobs.put(None)
            for thread in workers:
                thread.join()
            for recorder in self.recorders:
                recorder.close()
            self.keeper.close()
            ticking.set()
            ticker.join()
            self.tick()
        for recorder in self.recorders:
            if recorder.error is not None:
                raise CommsError(f"cannot write the send ledger: {recorder.error}")
        if self.crash is not None:
            raise self.crash
        return self.done
