"""The HTTP API (pytest-httpserver), file and memory transports."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from comms.content.urls import UNSUBSCRIBE_URL
from comms.core.config import Config, load_config
from comms.core.errors import (
    LocalError,
    PermanentFailure,
    PolicyRejection,
    TemporaryFailure,
    Unreachable,
)
from comms.mail.http_api import HttpApiTransport, idempotency_key
from comms.mail.message import MessageFactory, OutgoingMessage, Recipient
from comms.mail.transports import FileTransport, MemoryTransport, memory_outbox, open_transport

from .issue_sample import SECRET, config_for, rendered_issue

API = "/v3/smtp/email"
ENV = {"COMMS_API_KEY": "xkeysib-test"}


def _with_key(folder: Path, extra: str = "") -> Config:
    """A Config from a comms.toml holding `extra`, the API key from the environment."""
    path = folder / "comms.toml"
    path.write_text(extra, encoding="utf-8")
    return load_config(path, environ=ENV)


@pytest.fixture
def message(tmp_path: Path) -> OutgoingMessage:
    factory = MessageFactory(config_for(tmp_path), rendered_issue(), SECRET)
    return factory.build(Recipient("42", "leserin@example.org", "Lea Müller"))


def _api(server: HTTPServer, tmp_path: Path, sleeps: list[float]) -> HttpApiTransport:
    url = f"brevo+http://127.0.0.1:{server.port}"
    transport = open_transport(url, _with_key(tmp_path, "[api]\nmax_wait = 5\n"))
    assert isinstance(transport, HttpApiTransport)
    transport.sleep = sleeps.append
    return transport


def _send(transport: HttpApiTransport, message: OutgoingMessage) -> None:
    transport.send(message.envelope_from, message.recipient, message.data, message.key)


def test_429_then_success_is_one_logical_send_with_one_key(
    httpserver: HTTPServer, tmp_path: Path, message: OutgoingMessage
) -> None:
    httpserver.expect_ordered_request(API, method="POST").respond_with_response(
        Response('{"message":"Too many requests"}', status=429, headers={"Retry-After": "2"})
    )
    httpserver.expect_ordered_request(API, method="POST").respond_with_json(
        {"messageId": "<x@smtp-relay.brevo.com>"}, status=201
    )
    sleeps: list[float] = []
    _send(_api(httpserver, tmp_path, sleeps), message)
    requests = [request for request, _ in httpserver.log]
    assert len(requests) == 2
    assert sleeps == [2.0]
    keys = {r.headers["Idempotency-Key"] for r in requests}
    assert keys == {idempotency_key("2020-02-newsletter/42")}
    bodies = [json.loads(r.get_data()) for r in requests]
    assert bodies[0] == bodies[1]
    assert {r.headers["api-key"] for r in requests} == {"xkeysib-test"}
    body = bodies[0]
    assert body["headers"]["idempotencyKey"] == keys.pop()
    assert body["sender"] == {
        "email": "newsletter@example.org",
        "name": "Bündnis „Niedersachsen packt an“",
    }
    assert body["to"] == [{"email": "leserin@example.org", "name": "Lea Müller"}]
    assert body["replyTo"]["email"] == "info@example.org"
    assert body["subject"] == rendered_issue().subject
    sent = BytesParser(policy=default).parsebytes(message.data)
    assert body["headers"]["List-Unsubscribe"] == sent["List-Unsubscribe"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = sent["List-Unsubscribe"].strip("<>")
    issue = rendered_issue()
    assert body["textContent"].startswith(issue.text.split(UNSUBSCRIBE_URL)[0] + unsubscribe)
    assert body["htmlContent"].startswith(issue.html.split(UNSUBSCRIBE_URL)[0] + unsubscribe)
    assert "Musterstraße" in body["htmlContent"]


def test_5xx_until_the_attempts_run_out_is_temporary(
    httpserver: HTTPServer, tmp_path: Path, message: OutgoingMessage
) -> None:
    httpserver.expect_request(API).respond_with_data("upstream down", status=503)
    sleeps: list[float] = []
    with pytest.raises(TemporaryFailure) as info:
        _send(_api(httpserver, tmp_path, sleeps), message)
    assert info.value.code == 503
    assert len(httpserver.log) == 3  # api.max_attempts
    assert sleeps == [1.0, 2.0]  # exponential backoff without Retry-After


def test_a_retry_after_beyond_max_wait_is_left_to_the_caller(
    httpserver: HTTPServer, tmp_path: Path, message: OutgoingMessage
) -> None:
    httpserver.expect_request(API).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "600"}
    )
    sleeps: list[float] = []
    with pytest.raises(TemporaryFailure) as info:
        _send(_api(httpserver, tmp_path, sleeps), message)
    assert (info.value.retry_after, sleeps, len(httpserver.log)) == (600.0, [], 1)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            400,
            '{"code":"invalid_parameter","message":"email is not valid in to"}',
            PermanentFailure,
        ),
        (400, '{"code":"missing_parameter","message":"sender is missing"}', PolicyRejection),
        (401, '{"code":"unauthorized","message":"Key not found"}', PolicyRejection),
        (403, '{"code":"permission_denied","message":"not activated"}', PolicyRejection),
        (402, '{"code":"not_enough_credits","message":"no credits"}', PolicyRejection),
    ],
)
def test_client_errors_are_classified_and_not_retried(
    httpserver: HTTPServer,
    tmp_path: Path,
    message: OutgoingMessage,
    status: int,
    body: str,
    kind: type[Exception],
) -> None:
    httpserver.expect_request(API).respond_with_data(body, status=status)
    with pytest.raises(kind) as info:
        _send(_api(httpserver, tmp_path, []), message)
    assert type(info.value) is kind
    assert str(info.value) == f"http://127.0.0.1:{httpserver.port}{API}: HTTP {status} {body}"
    assert len(httpserver.log) == 1


def test_no_answer_in_time_is_ambiguous(
    httpserver: HTTPServer, tmp_path: Path, message: OutgoingMessage
) -> None:
    import time

    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response("{}", status=201)

    httpserver.expect_request(API).respond_with_handler(slow)
    transport = _api(httpserver, tmp_path, [])
    transport.timeout = 0.1
    transport.max_attempts = 1
    with pytest.raises(TemporaryFailure) as info:
        _send(transport, message)
    assert info.value.ambiguous is True


def test_file_transport_writes_one_parseable_eml_per_message(tmp_path: Path) -> None:
    config = config_for(tmp_path, 'transport = "file://var/outbox"\n')
    transport = open_transport(config.transport_url, config)
    assert isinstance(transport, FileTransport)
    assert transport.directory == tmp_path / "var" / "outbox"
    factory = MessageFactory(config, rendered_issue(), SECRET)
    messages = [factory.build(Recipient(str(i), f"r{i}@example.org")) for i in range(3)]
    for message in messages + messages[:1]:  # a retry overwrites, never duplicates
        transport.send(message.envelope_from, message.recipient, message.data, message.key)
    files = sorted((tmp_path / "var" / "outbox").rglob("*"))
    issue = tmp_path / "var" / "outbox" / "2020-02-newsletter"
    assert files == [issue, issue / "0.eml", issue / "1.eml", issue / "2.eml"]
    parsed = BytesParser(policy=default).parsebytes((issue / "1.eml").read_bytes())
    assert parsed["To"] == "r1@example.org"
    assert parsed["Message-ID"] == messages[1].message_id
    assert transport.path_for("../../etc/pass wd") == tmp_path / "var/outbox/_/_/etc/pass_wd.eml"


def test_file_transport_that_cannot_write_stops_the_campaign(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file, not a folder")
    transport = FileTransport(tmp_path / "blocked")
    # A fault of this machine, not a server's policy (the run stops, nobody is paused).
    with pytest.raises(LocalError, match="^cannot write .*: Not a directory$"):
        transport.send("a@example.org", "b@example.org", b"x", "issue/1")


def test_memory_transport_records_and_scripts_failures(tmp_path: Path) -> None:
    shared = open_transport("memory://tests", config_for(tmp_path))
    shared.send("a@example.org", "b@example.org", b"data", "i/1")
    assert memory_outbox("tests")[-1].key == "i/1"
    failing = MemoryTransport(failures={"b@example.org": [TemporaryFailure("451 later")]})
    with pytest.raises(TemporaryFailure):
        failing.send("a@example.org", "b@example.org", b"data", "i/1")
    failing.send("a@example.org", "b@example.org", b"data", "i/1")
    assert [m.recipient for m in failing.sent] == ["b@example.org"]


def test_an_unreachable_api_is_not_ambiguous(tmp_path: Path, message: OutgoingMessage) -> None:
    from .smtp_servers import free_port

    url = f"brevo+http://127.0.0.1:{free_port()}"
    transport = open_transport(url, _with_key(tmp_path, "[api]\nmax_attempts = 1\n"))
    with pytest.raises(Unreachable) as info:
        _send(transport, message)  # type: ignore[arg-type]
    assert info.value.ambiguous is False
    assert str(info.value).startswith(f"http://127.0.0.1:{url.rsplit(':', 1)[1]}/v3/smtp/email: ")
