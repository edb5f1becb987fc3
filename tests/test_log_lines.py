"""Log lines: UTC time, level, command and process id, logger, message; JSON Lines with
`[log] format = "json"`; a fault as one line (the traceback only with --debug); masked alike."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from comms.core.logs import LAYOUT, configure_logging

TOKEN = "S93MafmmDZXPVIKa.l0DKxq8bQ2aZ7mVtYs"
SECRET = "smtp-pass-Zq81x"
#: `2026-03-01T09:00:00.123Z`: the time of a line, in UTC to the millisecond.
WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """A logger of its own under the handler `configure_logging` sets up; the layout (a
    process-wide setting) is put back afterwards."""
    for key, value in list(LAYOUT.items()):
        monkeypatch.setitem(LAYOUT, key, value)
    logger = logging.getLogger("lines.test")
    configure_logging(
        names=("lines",), secrets=[SECRET], style="text", debug=False, process="comms worker"
    )
    yield logger
    for handler in logging.getLogger("lines").handlers:
        logging.getLogger("lines").removeHandler(handler)


def _fail(logger: logging.Logger) -> None:
    try:
        raise RuntimeError(f"mail for erika@example.org with {SECRET} via /confirm/{TOKEN}\nmore")
    except RuntimeError:
        logger.exception("send job failed", extra={"campaign": "2020-02-newsletter"})


def test_a_text_line_has_time_level_process_and_one_line_faults(
    log: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    log.info("2020-02-newsletter: 5 sent", extra={"campaign": "2020-02-newsletter"})
    _fail(log)
    lines = capsys.readouterr().err.splitlines()
    pid = os.getpid()
    assert re.fullmatch(
        rf"{WHEN} INFO comms worker\[{pid}\] lines\.test: 2020-02-newsletter: 5 sent", lines[0]
    )
    # One line: the fault's type and first line, masked; no traceback.
    assert len(lines) == 2
    assert re.fullmatch(
        rf"{WHEN} ERROR comms worker\[{pid}\] lines\.test: send job failed \(RuntimeError: mail "
        r"for …@example.org with \[secret\] via /confirm/\[token\]\)",
        lines[1],
    )


def test_debug_shows_the_traceback_masked(
    log: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(names=("lines",), debug=True)
    _fail(log)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err and "in _fail" in err
    assert "erika" not in err and SECRET not in err and TOKEN not in err


def test_json_lines_carry_fields_and_are_masked(
    log: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(names=("lines",), style="json")
    counts = {"sent": 5, "queued": 2}
    log.warning(
        "%s: 5 sent to erika@example.org",
        "2020-02-newsletter",
        extra={"campaign": "2020-02-newsletter", "counts": counts},
    )
    _fail(log)
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert set(first) == {
        "time",
        "level",
        "process",
        "pid",
        "logger",
        "message",
        "campaign",
        "counts",
    }
    assert re.fullmatch(WHEN, first["time"])
    assert (first["level"], first["process"], first["pid"]) == (
        "WARNING",
        "comms worker",
        os.getpid(),
    )
    assert first["message"] == "2020-02-newsletter: 5 sent to …@example.org"
    assert (first["campaign"], first["counts"]) == ("2020-02-newsletter", counts)
    # RedactingFilter applies to JSON as to text: message and fault, no traceback.
    assert second["fault"] == (
        "RuntimeError: mail for …@example.org with [secret] via /confirm/[token]"
    )
    assert "traceback" not in second

    configure_logging(names=("lines",), debug=True)
    _fail(log)
    third = json.loads(capsys.readouterr().err)
    assert "Traceback (most recent call last):" in third["traceback"]
    assert SECRET not in third["traceback"] and TOKEN not in third["traceback"]
    assert "erika" not in third["traceback"]
