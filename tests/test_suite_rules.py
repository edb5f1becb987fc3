"""The test suite's own rules: no time budgets (bench/ measures), shipped defaults by default.

A bound on measured time fails on a loaded machine without a fault in the code (issue 20: a
2.0 s CPU budget took 2.1 s); timings belong in bench/, as ratios to a baseline of the same
run. A fixture that applies itself to every test must not change a setting: tests run with the
shipped comms.toml unless they ask otherwise (e.g. the `without_approval` fixture).
"""

from __future__ import annotations

import ast

from .conftest import ROOT

CLOCKS = {"perf_counter", "monotonic", "process_time", "time", "thread_time"}


def _is_clock(node: ast.AST) -> bool:
    """A call such as time.monotonic() or perf_counter()."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in CLOCKS


def _elapsed(node: ast.AST, names: set[str]) -> bool:
    """An expression holding a measured duration: a difference of clock readings, or a name
    assigned one."""
    if isinstance(node, ast.Name):
        return node.id in names
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Sub)
        and (
            any(_is_clock(n) for n in ast.walk(node))
            or any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))
        )
    )


def time_budgets(source: str, filename: str = "<test>") -> list[int]:
    """Lines of `source` that assert an upper bound (a number) on a measured duration, or
    read the CPU clock."""
    tree = ast.parse(source, filename)
    durations: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _elapsed(node.value, durations):
            durations |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_clock(node):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in {"process_time", "thread_time"}:
                found.append(node.lineno)
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, sides[:-1], sides[1:], strict=True):
            if isinstance(op, ast.Gt | ast.GtE):
                left, right = right, left
            elif not isinstance(op, ast.Lt | ast.LtE):
                continue
            if _elapsed(left, durations) and isinstance(right, ast.Constant):
                found.append(node.lineno)
    return sorted(set(found))


def test_no_test_asserts_a_time_budget() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for line in time_budgets(path.read_text(encoding="utf-8"), str(path))
    ]
    assert found == [], "move these timings to bench/ (ratios to a baseline of the same run)"


def test_the_budget_check_sees_the_usual_shapes() -> None:
    assert time_budgets("t = time.monotonic()\nassert time.monotonic() - t < 2\n") == [2]
    assert time_budgets("t = perf_counter()\nx()\ntook = perf_counter() - t\nassert took <= 2\n")
    assert time_budgets("assert 5 > time.monotonic() - began\n") == [1]
    assert time_budgets("used = time.process_time()\n") == [1]
    # Waiting for an event, with a deadline against hanging, and lower bounds are fine.
    assert time_budgets("while x():\n    assert time.monotonic() < deadline\n") == []
    assert time_budgets("assert time.monotonic() - began >= 0.5\n") == []
    assert time_budgets("assert time.monotonic() - killed < HANG\n") == []


def _autouse(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and any(
            k.arg == "autouse" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in decorator.keywords
        ):
            return True
    return False


def test_no_autouse_fixture_changes_a_setting() -> None:
    """No autouse fixture sets a COMMS_ variable (a setting) for every test; tests that need
    another setting ask for a named fixture (`without_approval`) or pass it themselves."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and _autouse(node):
                for inner in ast.walk(node):
                    text = inner.value if isinstance(inner, ast.Constant) else None
                    if isinstance(text, str) and text.startswith("COMMS_"):
                        found.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert found == [], "request a named fixture in the tests that need another setting"
