"""Same work, same time (issue 14, finding 2; issue 21, finding 4): neither the sign-up answer
nor the requests right after it may tell whether an address is subscribed. Measured over HTTP
against the real app: the best single threshold on the times must not tell active from
unknown addresses (accuracy < 0.7, 30 + 30)."""

from __future__ import annotations

import http.client
import random
import statistics
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from comms.audience.mailer import SETTLE
from comms.db.people import Consent, NewSubscriber

from .webkit import Web, open_web, served

PER_GROUP = 30
#: Tries per address: the per-address limit lets three sign-ups an hour do their work.
TRIES = 3
LIMIT = 0.7
RUNS = 3


def best_threshold_accuracy(first: list[float], second: list[float]) -> float:
    """How well the best single threshold sorts the values into their two groups (0.5–1)."""
    labelled = sorted([(v, 0) for v in first] + [(v, 1) for v in second])
    total, below_first, below_second, best = len(labelled), 0, 0, 0.0
    # A threshold between the index-th and the next value: "first" below, "second" above (or
    # the other way round); only between different values, as a threshold cannot split ties.
    for index in range(total + 1):
        if index:
            if labelled[index - 1][1]:
                below_second += 1
            else:
                below_first += 1
        if 0 < index < total and labelled[index - 1][0] == labelled[index][0]:
            continue
        correct = below_first + (len(second) - below_second)
        best = max(best, correct / total, 1 - correct / total)
    return best


def test_best_threshold_accuracy() -> None:
    assert best_threshold_accuracy([1, 2, 3], [4, 5, 6]) == 1.0
    assert best_threshold_accuracy([4, 5, 6], [1, 2, 3]) == 1.0
    assert best_threshold_accuracy([1, 4], [2, 3]) == 0.75
    assert best_threshold_accuracy([1, 1], [1, 1]) == 0.5


def sign_up_seconds(port: int, email: str) -> float:
    """One sign-up as a script sends it (no browser headers, so no CSRF token needed)."""
    body = urlencode({"email": email})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/subscribe", body, headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    assert response.status == 200
    return elapsed


def measure(web: Web, port: int, run: int) -> tuple[list[float], list[float]]:
    """Median answer time per address: (active, unknown), the groups interleaved in pairs."""
    active = [f"a{run}x{i:02d}@example.org" for i in range(PER_GROUP)]
    unknown = [f"u{run}x{i:02d}@example.org" for i in range(PER_GROUP)]
    for email in active:
        web.store.add_confirmed(NewSubscriber(email), Consent("import", "timing test"))
    times: dict[str, list[float]] = {email: [] for email in active + unknown}
    order = random.Random(14 + run)
    sign_up_seconds(port, f"warmup{run}@example.org")
    for _ in range(TRIES):
        # Balanced: each active address next to an unknown one, in random order, so that a
        # burst of load on the shared machine slows both groups alike.
        order.shuffle(active)
        order.shuffle(unknown)
        for pair in zip(active, unknown, strict=True):
            for email in order.sample(pair, 2):
                times[email].append(sign_up_seconds(port, email))
    return (
        [statistics.median(times[e]) for e in active],
        [statistics.median(times[e]) for e in unknown],
    )


@pytest.mark.database
@pytest.mark.slow
def test_the_sign_up_answer_does_not_tell_active_from_unknown(tmp_path: Path) -> None:
    # The production delay of the background work; no IP limit for this one client.
    with open_web(tmp_path, settle=SETTLE, subscribe={"rate_limit": 100_000}) as web:
        with served(web.app) as port:
            # Up to three independent runs with fresh addresses: equal distributions pass one
            # run with a chance of about 98 %, so the test fails only when every run separates
            # the groups; a real difference (old code: 7.6 vs 1.2 ms) separates every run.
            results = []
            for run in range(RUNS):
                active, unknown = measure(web, port, run)
                accuracy = best_threshold_accuracy(active, unknown)
                results.append(
                    f"run {run}: accuracy {accuracy:.2f}, median active "
                    f"{statistics.median(active) * 1000:.2f} ms, unknown "
                    f"{statistics.median(unknown) * 1000:.2f} ms"
                )
                if accuracy < LIMIT:
                    break
            else:
                pytest.fail("the answer time tells who is subscribed: " + "; ".join(results))
        web.mailer.join()
    # The work was done in the background: every unknown address got its confirmation mail.
    assert web.store.find("u0x00@example.org") is not None


#: The follow-up probe: GETs of a small page, back to back, from the sign-up's answer until
#: the background work is surely done (it starts `FOLLOW_SETTLE` seconds after the POST).
FOLLOW_SETTLE = 0.05
FOLLOW_WINDOW = FOLLOW_SETTLE + 0.15
FOLLOW_TRIES = 2


def follow_up_seconds(port: int, email: str) -> tuple[float, float]:
    """Sign `email` up, then GET a page again and again for FOLLOW_WINDOW seconds on the same
    connection: (mean, longest) time of those GETs, as the review measured them."""
    body = urlencode({"email": email})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/subscribe", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < FOLLOW_WINDOW:
        before = time.perf_counter()
        conn.request("GET", "/index.html")
        conn.getresponse().read()
        times.append(time.perf_counter() - before)
    conn.close()
    return statistics.mean(times), max(times)


def measure_follow_ups(
    web: Web, port: int, run: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Per address the median (mean, longest) follow-up time: (active, unknown)."""
    active = [f"fa{run}x{i:02d}@example.org" for i in range(PER_GROUP)]
    unknown = [f"fu{run}x{i:02d}@example.org" for i in range(PER_GROUP)]
    for email in active:
        web.store.add_confirmed(NewSubscriber(email), Consent("import", "timing test"))
    times: dict[str, list[tuple[float, float]]] = {email: [] for email in active + unknown}
    order = random.Random(21 + run)
    follow_up_seconds(port, f"warmup{run}@example.org")
    for _ in range(FOLLOW_TRIES):
        order.shuffle(active)
        order.shuffle(unknown)
        for pair in zip(active, unknown, strict=True):
            for email in order.sample(pair, 2):
                times[email].append(follow_up_seconds(port, email))

    def medians(group: list[str]) -> list[tuple[float, float]]:
        return [
            (
                statistics.median(t[0] for t in times[e]),
                statistics.median(t[1] for t in times[e]),
            )
            for e in group
        ]

    return medians(active), medians(unknown)


@pytest.mark.database
@pytest.mark.slow
def test_the_requests_after_a_sign_up_do_not_tell_active_from_unknown(tmp_path: Path) -> None:
    # The background work runs FOLLOW_SETTLE after the POST (its delay does not change what
    # it costs); no client limit for this one client.
    with open_web(tmp_path, settle=FOLLOW_SETTLE, subscribe={"rate_limit": 100_000}) as web:
        (tmp_path / "public").mkdir(exist_ok=True)
        (tmp_path / "public" / "index.html").write_text("<h1>Archiv</h1>" + "x" * 500)
        with served(web.app) as port:
            # As above: the test fails only when every run separates the groups, by the mean
            # or by the longest follow-up time (old code: accuracy 0.80-0.87 by the longest,
            # 15 vs 25 ms).
            results = []
            for run in range(RUNS):
                active, unknown = measure_follow_ups(web, port, run)
                accuracies = [
                    best_threshold_accuracy([a[k] for a in active], [u[k] for u in unknown])
                    for k in (0, 1)
                ]
                results.append(
                    f"run {run}: accuracy by mean {accuracies[0]:.2f}, by longest "
                    f"{accuracies[1]:.2f}, median longest active "
                    f"{statistics.median(a[1] for a in active) * 1000:.2f} ms, unknown "
                    f"{statistics.median(u[1] for u in unknown) * 1000:.2f} ms"
                )
                if max(accuracies) < LIMIT:
                    break
            else:
                pytest.fail(
                    "the requests after a sign-up tell who is subscribed: " + "; ".join(results)
                )
        web.mailer.join()
    assert web.store.find("fu0x00@example.org") is not None
