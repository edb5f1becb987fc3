"""Benchmark: the `comms send` command (ledger + messages + SMTP) against Postfix smtp-source.

Run: .venv/bin/python bench/send.py [--subscribers 20000] [--connections 4] [--import-rows 100000]
                                    [--rounds 3] [--against CHECKOUT]

Needs Postfix's `smtp-sink` and `smtp-source` (Debian: `DEBIAN_FRONTEND=noninteractive apt-get
install -y postfix`; the daemon need not run). Steps, all on 127.0.0.1 in one run:

1. import `--import-rows` subscribers from a CSV file into a fresh SQLite database (timed);
2. `--rounds` interleaved rounds, each on fresh databases of `--subscribers`: time
   `smtp-source` sending that many messages of the sample issue's size over `--connections`
   sessions to one `smtp-sink`, then the `comms send 2020-02-newsletter --concurrency N`
   command, as a user runs it (interpreter start-up, imports, content, render, snapshot, send,
   report: wall clock), to a second `smtp-sink`; the ratio of each round, their median, and
   the best run of each against each other (other load on a shared machine only adds time);
3. the breakdown, in a child process that does what `comms send` does: render and snapshot
   apart from the send phase, CPU per message, peak RSS; and with a quarter of the
   subscribers, to show that memory does not grow with them.

Until issue 12 this benchmark reported only the send phase of step 3 against one smtp-source
run made right after the imports: it left out the ~2–3 s of start-up, content reading and
rendering that the command pays and smtp-source does not, so it said 0.49 where the command
timed as a whole reached 0.36.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postfix import smtp_sink, smtp_source_rate  # noqa: E402
from comms.audience.subscriber_csv import Problems, read_csv  # noqa: E402
from comms.content.site import read_site  # noqa: E402
from comms.core.config import Config, load_config  # noqa: E402
from comms.db.people import Consent  # noqa: E402
from comms.db.store import open_store  # noqa: E402
from comms.mail.message import Recipient  # noqa: E402
from comms.sending.campaign import issue_parts, opener_for, prepare, send  # noqa: E402
from comms.sending.run import SendOptions  # noqa: E402

ISSUE = "2020-02-newsletter"
CONSENT = Consent("import", "bench", note="Benchmark")


def _config(folder: Path, port: int = 25) -> Config:
    """The repository's sample site, with the database in `folder` and SMTP to `port`."""
    overrides = {
        "database_url": f"sqlite:///{folder / 'comms.db'}",
        "transport": f"smtp://127.0.0.1:{port}",
    }
    environ = {"COMMS_SECRET_KEY": "bench-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"}
    return load_config(ROOT / "comms.toml", overrides=overrides, environ=environ)


def _import(folder: Path, rows: int) -> tuple[float, float]:
    """A fresh database with `rows` confirmed subscribers from a CSV file; (wall s, CPU s)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_file = folder / "people.csv"
    with csv_file.open("w", encoding="utf-8") as handle:
        handle.write("email,name,topics\n")
        for n in range(rows):
            handle.write(f"leser.{n}@example.org,Leserin {n},sprache\n")
    config = _config(folder)
    store = open_store(config)
    began, cpu = time.perf_counter(), time.process_time()
    result, _ = store.import_subscribers(
        read_csv(csv_file, config, Problems(csv_file.name)), CONSENT, confirmed=True
    )
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert result.added == rows, result
    store.close()
    return elapsed, cpu


def _import_with(code: Path, folder: Path, rows: int) -> None:
    """`_import` by the checkout `code`: its own migrations make the schema its `comms send`
    expects (a newer one would refuse the older code)."""
    script = (
        "from pathlib import Path\nfrom bench.send import _import\n"
        f"_import(Path({str(folder)!r}), {rows})"
    )
    env = os.environ | {"PYTHONPATH": str(code)}
    subprocess.run([sys.executable, "-c", script], cwd=code, env=env, check=True)


def child(folder: Path, port: int, connections: int) -> None:
    """What `comms send ISSUE --concurrency N` does; prints timings and peak RSS as JSON."""
    config = _config(folder, port)
    began = time.perf_counter()
    site, _ = read_site(config)
    issue = site.issues[ISSUE]
    store = open_store(config)
    _, factory, fingerprint = issue_parts(config, store, site, issue)
    campaign, _ = prepare(store, ISSUE, fingerprint, issue.topics, issue.regions)
    ready = time.perf_counter()
    options = SendOptions.of(config.settings.delivery, concurrency=connections, rate=0)
    cpu = time.process_time()
    report = send(store, campaign, factory.build, opener_for(config), options)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    size = len(factory.build(Recipient("u0", "leser.0@example.org")).data)
    print(
        json.dumps(
            {
                "sent": report.counts.get("sent", 0),
                "counts": report.counts,
                "setup": ready - began,
                "send": done - ready,
                "cpu_us_per_message": cpu / max(1, report.counts.get("sent", 0)) * 1e6,
                "size": size,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def _run_child(folder: Path, port: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), str(port), str(connections)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data: dict[str, float] = json.loads(out)
    return data


def _message_size(folder: Path) -> int:
    config = _config(folder)
    site, _ = read_site(config)
    store = open_store(config)
    _, factory, _ = issue_parts(config, store, site, site.issues[ISSUE])
    store.close()
    return len(factory.build(Recipient("u0000000000000000", "leser.0@example.org")).data)


def _command(folder: Path, port: int, connections: int, code: Path | None = None) -> float:
    """Wall-clock seconds of the `comms send` command, as a user runs it (with the `comms`
    package of the checkout `code` when given)."""
    environ = dict(
        os.environ,
        **({"PYTHONPATH": str(code)} if code else {}),
        COMMS_SECRET_KEY="bench-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu",
        COMMS_DATABASE_URL=f"sqlite:///{folder / 'comms.db'}",
        # The sample's issue is scheduled and waits for an approval: the bench sends it now.
        COMMS_DELIVERY_REQUIRE_APPROVAL="false",
    )
    # Each checkout sends its own copy of the sample: with one shared var/ each would find the
    # other's code digest in the page cache and rebuild the whole archive, which a user never
    # pays.
    command = [
        sys.executable, "-m", "comms", "--config", str((code or ROOT) / "comms.toml"),
        "send", ISSUE, "--now",
        "--transport", f"smtp://127.0.0.1:{port}", "--concurrency", str(connections),
    ]  # fmt: skip
    began = time.perf_counter()
    # In the checkout's folder: `-m` puts the working folder first on the import path, so
    # from elsewhere PYTHONPATH alone would run that folder's `comms` instead.
    subprocess.run(command, env=environ, check=True, capture_output=True, cwd=code or ROOT)
    return time.perf_counter() - began


def main() -> None:
    """Run every step and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--against",
        type=Path,
        help="a checkout of another version (e.g. `git worktree add /tmp/old v1`): each round "
        "also times its `comms send`, on a database of its own",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]))
        return
    count, connections = args.subscribers, args.connections
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        seconds, cpu = _import(base / "import", args.import_rows)
        print(f"import of {args.import_rows:,} CSV rows: {seconds:.1f} s ({cpu:.1f} s CPU)")
        _import(base / "full", count)
        _import(base / "quarter", count // 4)
        size = _message_size(base / "full")
        print(f"message size {size:,} bytes; {count:,} subscribers; {connections} connections")
        ratios, references, walls, others = [], [], [], []
        with smtp_sink() as reference_port, smtp_sink() as port:
            # Untimed: a user has built the site before sending (check, preview), so the first
            # timed round should not be the one that fills the page cache of a checkout.
            _import(base / "warm", 100)
            _command(base / "warm", port, connections)
            if args.against:
                _import_with(args.against, base / "warm-against", 100)
                _command(base / "warm-against", port, connections, args.against)
            for n in range(args.rounds):
                _import(base / f"round{n}", count)
                reference = smtp_source_rate(reference_port, count, connections, size)
                wall = _command(base / f"round{n}", port, connections)
                ratios.append(count / wall / reference)
                references.append(reference)
                walls.append(wall)
                other = ""
                if args.against:
                    _import_with(args.against, base / f"against{n}", count)
                    seconds = _command(base / f"against{n}", port, connections, args.against)
                    others.append(count / seconds / reference)
                    other = f"; {args.against}: {count / seconds:,.0f} msg/s = {others[-1]:.2f}"
                print(
                    f"round {n + 1}: smtp-source {reference:,.0f} msg/s; `comms send` "
                    f"{count:,} in {wall:.1f} s = {count / wall:,.0f} msg/s "
                    f"= {ratios[-1]:.2f} of smtp-source{other}",
                    flush=True,
                )
            full = _run_child(base / "full", port, connections)
            quarter = _run_child(base / "quarter", port, connections)
    if others:
        print(f"{args.against} / smtp-source: median of the rounds {median(others):.2f}")
    best = count / min(walls) / max(references)
    print(
        f"`comms send` / smtp-source: median of the {args.rounds} rounds {median(ratios):.2f}; "
        f"best against best (the runs least disturbed by other load) {best:.2f}"
    )
    rate = full["sent"] / full["send"]
    print(
        f"breakdown: send phase {full['sent']:,} in {full['send']:.1f} s = {rate:,.0f} msg/s; "
        f"render and snapshot {full['setup']:.1f} s; the rest of the command's time is "
        "interpreter start-up, imports and reading the content"
    )
    print(f"CPU per message (all threads): {full['cpu_us_per_message']:.0f} µs")
    print(
        f"peak RSS: {full['maxrss_kb'] / 1024:.0f} MB for {count:,} subscribers, "
        f"{quarter['maxrss_kb'] / 1024:.0f} MB for {count // 4:,}"
    )
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
