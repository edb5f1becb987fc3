"""`/metrics` on `comms serve`: Prometheus text over real HTTP, parsed with prometheus_client's
own parser; 401 without a token, 403 with a wrong one, 404 when no token is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from comms.alerts.metrics import MetricsEndpoint
from comms.web.app import create_app

from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, open_site, with_subscribers
from .smtp_servers import Handler, smtp_server
from .test_schedule_serve import serve

TOKEN = "metrics-token-5f2c9a"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.usefixtures("without_approval")
def test_metrics_over_http_with_its_token_on_every_host(site_copy: Path) -> None:
    env = {"COMMS_SECRET_KEY": SECRET, "COMMS_METRICS_TOKEN": TOKEN}
    with_subscribers(site_copy)
    handler = Handler()
    handler.rcpt_replies["carla@example.org"] = "550 5.1.1 no such user"
    with smtp_server(handler) as smtp_port:
        env["COMMS_TRANSPORT"] = f"smtp://127.0.0.1:{smtp_port}"
        code, _, err = run_cli(site_copy, "send", ISSUE, "--now", "--yes", env=env)
        assert code == 0, err
        with serve(site_copy, env) as (_, port), serve(site_copy, env) as (_, other):
            url = f"http://127.0.0.1:{port}/metrics"
            bare = requests.get(url, timeout=10)
            wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
            posted = requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            good = requests.get(url, headers=auth, timeout=10)
            elsewhere = requests.get(f"http://127.0.0.1:{other}/metrics", headers=auth, timeout=10)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"] == 'Bearer realm="comms metrics"'
    assert wrong.status_code == 403
    assert posted.status_code == 405  # GET only: a scrape changes nothing
    assert good.status_code == 200
    assert good.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(good.text)
    issue = ("issue", ISSUE)
    assert found[("comms_deliveries", (issue, ("status", "sent")))] == 2
    assert found[("comms_deliveries", (issue, ("status", "failed")))] == 1
    assert found[("comms_deliveries", (issue, ("status", "queued")))] == 0
    assert found[("comms_queue_depth", (issue,))] == 0
    assert found[("comms_oldest_queued_age_seconds", (issue,))] == 0
    assert found[("comms_send_rate", (issue,))] == 0  # done: nothing is being sent
    assert found[("comms_subscribers", (("status", "active"),))] == 2
    assert found[("comms_subscribers", (("status", "bounced"),))] == 1
    [lease] = [key for key in found if key[0] == "comms_scheduler_lease"]
    assert found[lease] == 1
    # The web-only host reads the same database: the same figures.
    assert samples(elsewhere.text) == found


@pytest.mark.database
def test_metrics_do_not_exist_without_a_token(site_copy: Path) -> None:
    config, store = open_site(site_copy)
    try:
        app = create_app(config.output_dir, config, metrics=MetricsEndpoint(config, store.engine))
        answer = app.test_client().get("/metrics", headers={"Authorization": "Bearer x"})
    finally:
        store.close()
    assert answer.status_code == 404
