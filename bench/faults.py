"""Benchmark: `comms send` against servers that greylist, defer everything or drop connections.

Run: .venv/bin/python bench/faults.py [--subscribers 5000] [--connections 4] [--defer-seconds 60]
                                   [--rounds 5]

Every scenario sends the sample issue (2020-02-newsletter) to a fresh database of
`--subscribers` confirmed subscribers over `--connections` connections, unlimited rate, to an
aiosmtpd server (tests/smtp_servers.py) in a process of its own on 127.0.0.1, all in one run:

1. fault-free: the baseline time;
2. greylisting: every 10th recipient gets `451 4.7.1` at its first RCPT; the first pass (the
   run, which leaves the greylisted for their retry after `delivery.retry_backoff_seconds`)
   must take ≤ 2× the baseline;
3. connection drops: the server ends every session after 150 messages without a word (the
   client's own limit raised to 1,000 so that the server's counts); ≤ 1.10× the baseline;
4. everything deferred: `421 4.7.0 Too many messages, slow down` to every MAIL FROM, for
   `--defer-seconds`; reports the pace the run settles at and attempts per recipient (1.00:
   no retry storm, each deferred recipient waits for its retry instead).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.send import ISSUE, _import  # noqa: E402
from comms.content.site import read_site  # noqa: E402
from comms.core.config import load_config  # noqa: E402
from comms.db.store import open_store  # noqa: E402
from comms.db.tables import deliveries  # noqa: E402
from comms.sending.campaign import issue_parts, opener_for, prepare, send  # noqa: E402
from comms.sending.run import SendOptions  # noqa: E402
from tests.smtp_servers import Handler, smtp_server  # noqa: E402


@dataclass
class TimedHandler(Handler):
    """The test handler, also noting when each MAIL FROM came (for the pace)."""

    mail_times: list[float] = field(default_factory=list)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.mail_times.append(time.monotonic())
        return await super().handle_MAIL(server, session, envelope, address, options)


def _serve(settings: dict[str, Any], stop: Any, results: Any) -> None:
    """The server process: report its port, run the handler until `stop`, report what it saw."""
    handler = TimedHandler(**settings)
    with smtp_server(handler) as port:
        results.put(port)
        stop.wait()
    rcpts = [r for message in handler.received for r in message.rcpt_tos]
    results.put(
        {
            "received": len(handler.received),
            "distinct": len(set(rcpts)),
            "greylisted": len(handler.greylisted),
            "mail_commands": handler.mail_commands,
            "mail_times": handler.mail_times,
        }
    )


@dataclass
class Outcome:
    """One scenario's figures."""

    seconds: float
    counts: dict[str, int]
    server: dict[str, Any]
    #: Delivery attempts recorded in the ledger, and the deliveries that had any.
    attempts: int
    attempted: int


def scenario(
    folder: Path,
    count: int,
    connections: int,
    server: dict[str, Any],
    smtp: dict[str, Any] | None = None,
    stop_after: float | None = None,
) -> Outcome:
    """Import `count` subscribers, serve `server` in a process, time one `comms send` run."""
    _import(folder, count)
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    process = context.Process(target=_serve, args=(server, stop, results))
    process.start()
    try:
        port = int(results.get(timeout=30))
        overrides: dict[str, Any] = {
            "database_url": f"sqlite:///{folder / 'comms.db'}",
            "transport": f"smtp://127.0.0.1:{port}",
        }
        if smtp:
            overrides["smtp"] = smtp
        config = load_config(
            ROOT / "comms.toml", overrides=overrides, environ={"COMMS_SECRET_KEY": "bench-secret"}
        )
        site, _ = read_site(config)
        issue = site.issues[ISSUE]
        store = open_store(config)
        _, factory, fingerprint = issue_parts(config, store, site, issue)
        campaign, _ = prepare(store, ISSUE, fingerprint, issue.topics, issue.regions)
        halt = threading.Event()
        options = replace(
            SendOptions.of(config.settings.delivery, concurrency=connections, rate=0), stop=halt
        )
        timer = threading.Timer(stop_after, halt.set) if stop_after else None
        if timer is not None:
            timer.start()
        began = time.perf_counter()
        report = send(store, campaign, factory.build, opener_for(config), options)
        seconds = time.perf_counter() - began
        if timer is not None:
            timer.cancel()
        with store.engine.connect() as conn:
            tried = conn.execute(
                sa.select(sa.func.sum(deliveries.c.attempts), sa.func.count()).where(
                    deliveries.c.attempts > 0
                )
            ).one()
        store.close()
    finally:
        stop.set()
    data: dict[str, Any] = results.get(timeout=30)
    process.join(10)
    counts = {str(k): v for k, v in report.counts.items()}
    return Outcome(seconds, counts, data, int(tried[0] or 0), int(tried[1]))


def main() -> None:
    """Run the four scenarios and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--defer-seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count, connections = args.subscribers, args.connections
    greylist = {f"leser.{n}@example.org" for n in range(0, count, 10)}
    clean: list[Outcome] = []
    grey: list[Outcome] = []
    drops: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        # Interleaved rounds, the best of each: on a shared machine other load only ever adds
        # time, so the fastest run is the least disturbed one (as timeit takes the minimum).
        for n in range(args.rounds):
            clean.append(scenario(base / f"clean{n}", count, connections, {}))
            grey.append(scenario(base / f"grey{n}", count, connections, {"greylist": greylist}))
            drops.append(
                scenario(
                    base / f"drops{n}",
                    count,
                    connections,
                    {"close_after": 150},
                    smtp={"max_messages_per_connection": 1000},
                )  # fmt: skip
            )
        deferred = scenario(
            base / "defer", count, connections,
            {"mail_reply": "421 4.7.0 Too many messages, slow down"},
            stop_after=args.defer_seconds,
        )  # fmt: skip
    base_s = min(o.seconds for o in clean)
    print(
        f"{count:,} subscribers, {connections} connections, aiosmtpd in its own process; "
        f"best of {args.rounds} interleaved rounds"
    )
    print(
        f"fault-free: {clean[0].counts.get('sent', 0):,} sent in {base_s:.2f} s (baseline; "
        f"runs {', '.join(f'{o.seconds:.2f}' for o in clean)})"
    )
    g = grey[0]
    grey_s = min(o.seconds for o in grey)
    print(
        f"10 % greylisted: the first pass sends {g.counts.get('sent', 0):,}, "
        f"{g.counts.get('queued', 0):,} wait for their retry ({g.server['greylisted']:,} "
        f"greylisted), in {grey_s:.2f} s = {grey_s / base_s:.2f}× the baseline (target ≤ 2)"
    )
    drops_s = min(o.seconds for o in drops)
    print(
        f"drop every 150 messages: {drops[0].counts.get('sent', 0):,} sent in {drops_s:.2f} s "
        f"= {drops_s / base_s:.2f}× the baseline (target ≤ 1.10)"
    )
    times = deferred.server["mail_times"]
    if times:
        start = times[0]
        tail = [t for t in times if t >= start + args.defer_seconds / 2]
        span = args.defer_seconds / 2
        first = sum(1 for t in times if t < start + 5)
        print(
            f"421 to everything for {args.defer_seconds:.0f} s: {len(times):,} attempts, "
            f"{first:,} in the first 5 s, then a steady {len(tail) / span:.1f} msg/s in the "
            f"second half; {deferred.counts.get('queued', 0):,} queued for their retry, "
            f"attempts per deferred recipient: {deferred.attempts / max(1, deferred.attempted):.2f}"
            " (1.00: no retry storm)"
        )


if __name__ == "__main__":
    main()
