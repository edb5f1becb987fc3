"""Benchmark: sending workers on one database, and what the shared send budget costs.

Run: .venv/bin/python bench/multihost.py [--subscribers 20000] [--connections 4] [--rate 500]
                                         [--rounds 3] [--skip-budget] [--against CHECKOUT]

Needs Postfix's `smtp-sink`/`smtp-source` (as bench/send.py) and PostgreSQL's `initdb`/`pg_ctl`
(Debian: postgresql); a throwaway cluster is started in a temporary folder on 127.0.0.1.

1. The shared send budget at `--rate`: `--rate` × 5 slots taken by one worker with the local
   TokenBucket alone (what one process did before), then through SharedBudget on SQLite and on
   PostgreSQL, then by two workers (two processes) sharing one budget on PostgreSQL. Reported as
   the achieved rate against the target, and the time per database reservation.
2. `comms send` of the sample issue to `--subscribers` through `smtp-sink`, unlimited rate, as
   real `comms send` processes on a site built once before, untimed, as a user's site is:
   SQLite with one worker, PostgreSQL with one and with two workers started at once (the
   server keeps `fsync` and `synchronous_commit` on); each as a ratio to the `smtp-source` run
   of the same round, `--rounds` rounds, and their medians.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postfix import free_port, smtp_sink, smtp_source_rate  # noqa: E402
from bench.send import CONSENT, ISSUE, _message_size  # noqa: E402
from comms.audience.subscriber_csv import Problems, read_csv  # noqa: E402
from comms.core.config import load_config  # noqa: E402
from comms.db.store import open_store  # noqa: E402
from comms.sending.budget import GRANT_SECONDS, SharedBudget  # noqa: E402
from comms.sending.campaign import prepare  # noqa: E402
from comms.sending.throttle import TokenBucket  # noqa: E402


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        found = candidates[-1] if candidates else None
    if found is None:
        sys.exit(f"needs PostgreSQL's {name} (apt-get install postgresql)")
    return found


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway cluster on 127.0.0.1; yields a URL prefix (append a database name)."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="comms-bench-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    port, data = free_port(), folder / "data"
    subprocess.run([*as_user, _tool("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    ctl = _tool("pg_ctl")
    subprocess.run([*as_user, ctl, "-D", str(data), "-o", options, "-w", "start",
                    "-l", str(folder / "log")], check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/"
    finally:
        subprocess.run([*as_user, ctl, "-D", str(data), "-m", "fast", "stop"], check=False,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def new_database(prefix: str, name: str) -> str:
    """The URL of a new, empty database `name` on the cluster at `prefix` (`postgres`)."""
    admin = prefix.replace("postgresql+psycopg://", "postgresql://") + "postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return prefix + name


def _site(folder: Path, url: str) -> Path:
    """A copy of the sample site whose database is `url`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "content", folder / "content")
    shutil.copytree(ROOT / "static", folder / "static")  # the brand's logo is checked
    text = (ROOT / "comms.toml").read_text(encoding="utf-8")
    (folder / "comms.toml").write_text(f'database_url = "{url}"\n' + text, encoding="utf-8")
    return folder


def _fill(site: Path, count: int) -> None:
    """`count` confirmed subscribers in the site's database, imported from a CSV file."""
    csv_file = site / "people.csv"
    with csv_file.open("w", encoding="utf-8") as handle:
        handle.write("email,name,topics\n")
        for n in range(count):
            handle.write(f"leser.{n}@example.org,Leserin {n},sprache\n")
    config = load_config(site / "comms.toml", environ=ENV)
    store = open_store(config)
    rows = read_csv(csv_file, config, Problems(csv_file.name))
    result, _ = store.import_subscribers(rows, CONSENT, confirmed=True)
    assert result.added == count, result
    store.close()


#: A key as strong as `comms` demands (a weak one is refused at start-up).
SECRET = "bench-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"
#: The sample comms.toml requires an editor's approval before a send; the benchmark sends as is.
ENV = {"COMMS_SECRET_KEY": SECRET, "COMMS_DELIVERY_REQUIRE_APPROVAL": "false"}


def _take(url: str, slug: str, rate: float, count: int, shared: bool) -> dict[str, float]:
    """Take `count` slots at `rate` of campaign `slug`'s budget: wall-clock start and end, the
    reservations and the seconds spent in them (the connection is opened before timing)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(load_config(_site(Path(tmp), url) / "comms.toml", environ=ENV))
        campaign, _ = prepare(store, slug, "h", [], [])
        spent = [0.0]

        def reserve(n: int, r: float, now: float) -> float:
            began = time.perf_counter()
            try:
                return store.ledger.reserve(campaign.id, n, r, now)
            finally:
                spent[0] += time.perf_counter() - began

        store.ledger.counts(campaign.id)  # warm the pool
        budget = SharedBudget(reserve if shared else None, TokenBucket(rate), rate)
        start = time.time()
        for _ in range(count):
            budget.acquire()
        end = time.time()
        store.close()
    return {"start": start, "end": end, "trips": budget.reservations, "spent": spent[0]}


def _fill_with(code: Path | None, site: Path, count: int) -> None:
    """`_fill` by the checkout `code` when given: its own migrations make the schema its
    `comms send` expects (a newer one would refuse the older code)."""
    if code is None:
        _fill(site, count)
        return
    script = (
        "from pathlib import Path\nfrom bench.multihost import _fill\n"
        f"_fill(Path({str(site)!r}), {count})"
    )
    # No bytecode written into the other checkout (it may be a read-only reference).
    env = os.environ | {"PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-c", script], cwd=code, env=env, check=True)


def budget_rate(url: str, rate: float, count: int, shared: bool) -> tuple[float, float]:
    """Achieved messages/s at `rate`, best of three (the machine is shared), and the mean
    milliseconds of one reservation."""
    runs = [_take(url, f"budget-{n}-{shared}", rate, count, shared) for n in range(3)]
    best = max(count / (r["end"] - r["start"]) for r in runs)
    trips = sum(r["trips"] for r in runs)
    return best, sum(r["spent"] for r in runs) / trips * 1000 if trips else 0.0


def two_budget_workers(url: str, rate: float, count: int) -> float:
    """Two processes take `count` slots each from one budget; their combined messages/s from
    the first slot taken to the last (process start-up not counted)."""
    command = [sys.executable, __file__, "--budget-child", url, str(rate), str(count)]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    runs = [json.loads(worker.communicate()[0]) for worker in workers]
    return float(2 * count / (max(r["end"] for r in runs) - min(r["start"] for r in runs)))


def _comms(site: Path, code: Path | None) -> tuple[list[str], dict[str, str]]:
    """The `comms` command line on `site` and its environment (with the `comms` package of the
    checkout `code` when given)."""
    command = [sys.executable, "-m", "comms", "--config", str(site / "comms.toml")]
    return command, dict(os.environ | ENV | ({"PYTHONPATH": str(code)} if code else {}))


def _built(site: Path, code: Path | None = None) -> None:
    """Build `site` once, untimed (with the checkout `code` when given): a user has built or
    previewed the site before sending, so a timed send finds the archive's page cache warm."""
    command, env = _comms(site, code)
    subprocess.run(
        [*command, "build"], env=env, stdout=subprocess.DEVNULL, cwd=code or ROOT, check=True
    )


def send_workers(
    site: Path, port: int, connections: int, workers: int, code: Path | None = None
) -> float:
    """`comms send ISSUE` as `workers` processes started at once (with the `comms` package of
    the checkout `code` when given); seconds until all ended."""
    comms, env = _comms(site, code)
    command = [
        *comms, "send", ISSUE, "--now", "--transport", f"smtp://127.0.0.1:{port}",
        "--concurrency", str(connections), "--rate", "0",
    ]  # fmt: skip
    began = time.perf_counter()
    # In the checkout's folder: `-m` puts the working folder first on the import path, so
    # from here PYTHONPATH alone would run this checkout's `comms` instead.
    running = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=code or ROOT)
        for _ in range(workers)
    ]
    codes = [p.wait() for p in running]
    assert codes == [0] * workers, codes
    return time.perf_counter() - began


def budget_part(base: Path, pg: str, rate: float) -> None:
    """Part 1: the shared send budget, printed."""
    slots = int(rate * 5)
    lite = f"sqlite:///{base / 'budget.db'}"
    local, _ = budget_rate(lite, rate, slots, shared=False)
    on_sqlite, lite_ms = budget_rate(lite, rate, slots, shared=True)
    on_pg, pg_ms = budget_rate(new_database(pg, "budget"), rate, slots, shared=True)
    both = two_budget_workers(new_database(pg, "budget2"), rate, slots // 2)
    print(f"send budget at --rate {rate:g}, {slots:,} slots (best of 3), one reservation per "
          f"{GRANT_SECONDS} s of sending:")  # fmt: skip
    print(f"  TokenBucket alone (one process, as before): {local:,.1f}/s = {local / rate:.3f}")
    print(f"  SharedBudget on SQLite:     {on_sqlite:,.1f}/s = {on_sqlite / rate:.3f}, "
          f"{lite_ms:.1f} ms per reservation")  # fmt: skip
    print(f"  SharedBudget on PostgreSQL: {on_pg:,.1f}/s = {on_pg / rate:.3f}, "
          f"{pg_ms:.1f} ms per reservation")  # fmt: skip
    print(f"  two workers, one budget on PostgreSQL: {both:,.1f}/s together = "
          f"{both / rate:.3f} (before: each at the rate, 2.0)")  # fmt: skip


def send_part(
    base: Path, pg: str, count: int, connections: int, rounds: int, against: Path | None
) -> None:
    """Part 2: rounds of smtp-source, then `comms send` on SQLite, PostgreSQL with one and with
    two workers, each on fresh databases; every ratio against the smtp-source run of its round
    (the machine is shared: load shifts between rounds), then the medians."""
    size = 0
    ratios: dict[str, list[float]] = {"sqlite-1": [], "pg-1": [], "pg-2": []}
    if against:
        ratios["pg-1 against"] = []
        ratios["pg-2 against"] = []
    with smtp_sink() as port:
        for n in range(rounds):
            sites = {
                "sqlite-1": (base / f"s1-{n}", f"sqlite:///{base / f's1-{n}' / 'comms.db'}"),
                "pg-1": (base / f"p1-{n}", new_database(pg, f"send1_{n}")),
                "pg-2": (base / f"p2-{n}", new_database(pg, f"send2_{n}")),
            }
            if against:
                sites["pg-1 against"] = (base / f"pa-{n}", new_database(pg, f"against_{n}"))
                sites["pg-2 against"] = (base / f"pb-{n}", new_database(pg, f"against2_{n}"))
            for name, (folder, url) in sites.items():
                code = against if name.endswith("against") else None
                _fill_with(code, _site(folder / "site", url), count)
                _built(folder / "site", code)
            # bench/send.py's sample message, as smtp-source sends it
            size = size or _message_size(base / f"s1-{n}")
            reference = smtp_source_rate(port, count, connections, size)
            line = [f"round {n + 1}: smtp-source {reference:,.0f} msg/s"]
            for name, (folder, _) in sites.items():
                code = against if name.endswith("against") else None
                workers = 2 if name.startswith("pg-2") else 1
                seconds = send_workers(folder / "site", port, connections, workers, code)
                ratios[name].append(count / seconds / reference)
                line.append(f"{name} {count / seconds:,.0f} msg/s = {ratios[name][-1]:.2f}")
            print("; ".join(line), flush=True)
    print(f"{count:,} subscribers, {connections} connections per worker, message {size:,} bytes")
    for name, values in ratios.items():
        print(f"  {name}: median of {rounds} rounds {median(values):.2f} of smtp-source "
              f"({', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
    for suffix in ("", " against") if against else ("",):
        two = [b / a for a, b in zip(ratios[f"pg-1{suffix}"], ratios[f"pg-2{suffix}"], strict=True)]
        print(f"  two workers / one on PostgreSQL{suffix}: median {median(two):.2f} "
              f"({', '.join(f'{v:.2f}' for v in two)})")  # fmt: skip


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-budget", action="store_true", help="only part 2")
    parser.add_argument(
        "--against",
        type=Path,
        help="a checkout of another version: each round also times its `comms send` on "
        "PostgreSQL with one and with two workers",
    )
    parser.add_argument("--budget-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.budget_child:
        url, rate, count = args.budget_child
        print(json.dumps(_take(url, "budget-shared", float(rate), int(count), shared=True)))
        return
    with tempfile.TemporaryDirectory() as tmp, postgres() as pg:
        base = Path(tmp)
        if not args.skip_budget:
            budget_part(base, pg, args.rate)
        send_part(base, pg, args.subscribers, args.connections, args.rounds, args.against)


if __name__ == "__main__":
    main()
