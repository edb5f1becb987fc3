"""`GET /metrics`: the operators' Prometheus endpoint (the decisions are
`comms.alerts.metrics.MetricsEndpoint`'s)."""

from __future__ import annotations

from flask import Flask, Response, request

from comms.alerts.metrics import MetricsEndpoint


def add_metrics_route(app: Flask, endpoint: MetricsEndpoint) -> None:
    """Register `GET /metrics` (GET and HEAD only: a scrape changes nothing)."""

    def metrics() -> Response:
        answer = endpoint.answer(request.headers.get("Authorization"))
        response = Response(answer.body, answer.status, content_type=answer.content_type)
        response.headers.update(answer.headers)
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
