"""Tests and benchmarks drive the command line only through its entry points, never its helpers.

import-linter (`make lint`) checks the rule "nothing imports comms.cli" inside the package;
tests/ and bench/ lie outside it, so this test reads their imports itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

#: What may be imported from comms.cli: the click group (for CliRunner) and the console script.
ENTRY_POINTS = {"cli", "main"}


def _is_cli(module: str) -> bool:
    return module == "comms.cli" or module.startswith("comms.cli.")


def cli_imports(path: Path) -> list[str]:
    """Everything `path` imports from comms.cli beyond its entry points, as 'module.name'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_cli(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                entry = node.module == "comms.cli" and alias.name in ENTRY_POINTS
                if _is_cli(full) and not entry:
                    found.append(full)
    return found


def test_tests_and_benchmarks_use_only_the_cli_entry_points() -> None:
    files = sorted([*ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py")])
    found = {f"{path.relative_to(ROOT)}: {name}" for path in files for name in cli_imports(path)}
    assert sorted(found) == [], "import these from below comms.cli, not from it"


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "import comms.cli\n"
        "import comms.cli.common as common\n"
        "from comms import cli\n"
        "from comms.cli import cli, main, load_site\n"
        "from comms.cli.content import slugify\n"
        "from comms.core import config\n",
        encoding="utf-8",
    )
    assert cli_imports(source) == [
        "comms.cli",
        "comms.cli.common",
        "comms.cli",
        "comms.cli.load_site",
        "comms.cli.content.slugify",
    ]


# -- one owner per decision: nobody decides it a second time by comparing strings --------------

#: (pattern, the one place allowed to have it, what to use instead)
SECOND_COPIES = [
    (r"""[=!]=\s*["'](ready|draft)["']""", None, "IssueStatus"),
    (r"""["'](ready|draft)["']\s*[=!]=""", None, "IssueStatus"),
    (r"\.digest\s*==", "comms/sending/desk.py", "comms.sending.desk.approval_of"),
    # The send rules: refusals come from the chain; callers state a moment, not a bypass.
    (r"NotSendable\(", "comms/sending/rules.py", "comms.sending.rules.require"),
    (r"early=True", None, "Request.when_due or Request(issue, now)"),
]


def test_no_second_copy_of_a_decision() -> None:
    import re

    found = []
    for path in sorted((ROOT / "comms").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        for pattern, owner, instead in SECOND_COPIES:
            if name != owner and re.search(pattern, text):
                found.append(f"{name}: {pattern} (use {instead})")
    assert found == []
