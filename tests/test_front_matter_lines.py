"""One front matter field changed as a person would change it (the desk's schedule)."""

from __future__ import annotations

import pytest

from comms.content.front_matter_lines import set_field
from comms.core.errors import CommsError

ISSUE = (
    "---\n"
    "number: 3\n"
    "# When the scheduler sends it once status is ready (YYYY-MM-DD HH:MM).\n"
    "send_at: 2020-02-04 09:00  # morning\n"
    "events:\n"
    "  - a\n"
    "---\n"
    "send_at: in the body stays\n"
)


def test_the_line_is_rewritten_and_everything_else_kept() -> None:
    changed = set_field(ISSUE, "send_at", "2026-12-09 07:30")
    assert changed == ISSUE.replace(
        "send_at: 2020-02-04 09:00  # morning", "send_at: 2026-12-09 07:30  # morning"
    )


def test_a_missing_field_is_added_before_the_closing_fence() -> None:
    text = "---\r\nnumber: 3\r\n---\r\nbody\r\n"
    assert set_field(text, "send_at", "2026-12-09 07:30") == (
        "---\r\nnumber: 3\r\nsend_at: 2026-12-09 07:30\r\n---\r\nbody\r\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("number: 3\n", "no front matter"),
        ("---\nnumber: 3\n", "never closed"),
        ("---\nsend_at:\n  - x\n---\n", "holds a block"),
    ],
)
def test_what_cannot_be_changed_line_by_line_is_refused(text: str, message: str) -> None:
    with pytest.raises(CommsError, match=message):
        set_field(text, "send_at", "2026-12-09 07:30")
