"""`/metrics` on `comms serve`: Prometheus text over real HTTP, parsed with prometheus_client's
own parser; 401 without a token, 403 with a wrong one, 404 when no token is configured."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from comms.alerts.metrics import MetricsEndpoint
from comms.web.app import create_app

from .ledgerkit import run_cli
from .schedkit import ISSUE, SECRET, open_site, wait_for, with_subscribers
from .smtp_servers import Handler, free_port, smtp_server
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


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed")
@pytest.mark.usefixtures("without_approval")
def test_a_real_prometheus_scrapes_comms_with_its_token(site_copy: Path, tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    env = {"COMMS_SECRET_KEY": SECRET, "COMMS_METRICS_TOKEN": TOKEN}
    with_subscribers(site_copy)
    with smtp_server(Handler()) as smtp_port:
        env["COMMS_TRANSPORT"] = f"smtp://127.0.0.1:{smtp_port}"
        code, _, err = run_cli(site_copy, "send", ISSUE, "--now", "--yes", env=env)
        assert code == 0, err
    with serve(site_copy, env) as (_, port):
        text = requests.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).text  # fmt: skip
        promtool = shutil.which("promtool")
        if promtool is not None:  # the exposition format as Prometheus's own linter reads it
            lint = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                  capture_output=True, check=False)  # fmt: skip
            assert lint.returncode == 0, lint.stdout + lint.stderr
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: comms\n"
            f"    authorization: {{credentials: {TOKEN}}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
            encoding="utf-8",
        )
        web = free_port()
        prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{web}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:

            def sent() -> list[object]:
                try:
                    answer = requests.get(
                        f"http://127.0.0.1:{web}/api/v1/query",
                        params={"query": f'comms_deliveries{{issue="{ISSUE}",status="sent"}}'},
                        timeout=5,
                    )
                except requests.ConnectionError:
                    return []
                if answer.status_code != 200:  # still starting ("Service Unavailable")
                    return []
                result: list[object] = answer.json()["data"]["result"]
                return result

            wait_for(lambda: bool(sent()), timeout=60)
            [series] = sent()
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=20)
    assert isinstance(series, dict)
    assert series["value"][1] == "3"
    assert series["metric"]["job"] == "comms"
