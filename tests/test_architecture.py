"""Tests and benchmarks drive the command line only through its entry points, never its helpers.

import-linter (`make lint`) checks the rule "nothing imports comms.cli" inside the package;
tests/ and bench/ lie outside it, so this test reads their imports itself.
"""

from __future__ import annotations

import ast
import re
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


def _offences(pattern: re.Pattern[str], allowed: str) -> list[str]:
    """Where a module of comms other than `allowed` matches `pattern`, as 'path: text'."""
    found = []
    for path in sorted(ROOT.glob("comms/**/*.py")):
        name = str(path.relative_to(ROOT))
        if name != allowed:
            text = path.read_text(encoding="utf-8")
            found += [f"{name}: {match.group(0)}" for match in pattern.finditer(text)]
    return found


#: Hashing with a key, and token signers: a second key derivation beside comms.core.keys.
KEYED_HASH = re.compile(
    r"\bhmac\.(?:new|digest|HMAC)\b|\bfrom hmac import (?!compare_digest\b)\w+"
    r"|\b(?:Timestamp)?Signer\(|Serializer\(|\bhashlib\.\w+\([^)]*(?:\bkey=|secret)"
)


def test_only_the_keys_module_hashes_with_a_key() -> None:
    found = _offences(KEYED_HASH, "comms/core/keys.py")
    assert found == [], "make keys and keyed hashes with comms.core.keys (a Purpose of its own)"


def test_the_key_check_sees_every_kind_of_keyed_hash() -> None:
    bad = [
        "hmac.new(secret.encode(), data, hashlib.sha256)",
        "hmac.digest(key, data, 'sha256')",
        "from hmac import new",
        "TimestampSigner(secret, salt='x')",
        "Signer(secret)",
        "URLSafeSerializer(secret)",
        "hashlib.blake2b(data, key=secret)",
        "hashlib.sha256(self.secret.encode() + data)",
    ]
    good = [
        "hmac.compare_digest(a, b)",
        "from hmac import compare_digest",
        "hashlib.sha256(data).hexdigest()",
        "hashlib.blake2b(slug.encode(), digest_size=12)",
        "isinstance(signer, TimestampSigner)",
    ]
    assert [line for line in bad if not KEYED_HASH.search(line)] == []
    assert [line for line in good if KEYED_HASH.search(line)] == []


#: Reading the time of day: a second clock beside comms.core.clock (time.monotonic, which
#: measures durations, is no clock of the day and stays allowed).
WALL_CLOCK = re.compile(
    r"\b(?:datetime|date)\.(?:now|utcnow|today)\(|\btime\.time(?:_ns)?\b|\bfrom time import\b"
)


def test_only_the_clock_module_reads_the_time_of_day() -> None:
    found = _offences(WALL_CLOCK, "comms/core/clock.py")
    assert found == [], "ask comms.core.clock (now_utc, epoch, or config.now() for the site)"


def test_the_clock_check_sees_every_way_to_read_the_time() -> None:
    bad = [
        "datetime.now(UTC)",
        "datetime.datetime.now(tz)",
        "datetime.utcnow()",
        "date.today()",
        "datetime.today()",
        "clock: Callable[[], float] = time.time",
        "time.time()",
        "time.time_ns()",
        "from time import time",
    ]
    good = ["time.monotonic()", "config.now()", "now_utc()", "time.sleep(1)", "clock.now()"]
    assert [line for line in bad if not WALL_CLOCK.search(line)] == []
    assert [line for line in good if WALL_CLOCK.search(line)] == []


# -- one owner per decision: nobody decides it a second time by comparing strings --------------

#: (pattern, the one place allowed to have it, what to use instead)
SECOND_COPIES = [
    (r"""[=!]=\s*["'](ready|draft)["']""", None, "IssueStatus"),
    (r"""["'](ready|draft)["']\s*[=!]=""", None, "IssueStatus"),
    (r"\.digest\s*==", "comms/sending/approval.py", "comms.sending.approval.approval_of"),
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


#: Modules whose `__all__` may name what they import, and why.
ENTRY_PACKAGES = {"comms/cli/__init__.py": "the console script and the click group"}


def reexports(path: Path) -> list[str]:
    """Names that `path`'s `__all__` lists without defining them (a re-export of a moved name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    defined: set[str] = set()
    listed: list[str] = []
    aliased: list[str] = []  # `from m import x as x`: mypy's mark of an explicit re-export
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            aliased += [alias.name for alias in node.names if alias.asname == alias.name]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
                    if target.id == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                        listed = [
                            e.value
                            for e in node.value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        ]
    return [name for name in listed if name not in defined] + aliased


def test_no_module_reexports_a_name_it_does_not_define() -> None:
    found = [
        f"{path.relative_to(ROOT).as_posix()}: {name}"
        for path in sorted((ROOT / "comms").rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in ENTRY_PACKAGES
        for name in reexports(path)
    ]
    assert found == [], "import these from the module that defines them"


def test_the_reexport_check_sees_an_imported_name(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "from comms.core.clock import now_utc\n"
        "from comms.core.clock import epoch as epoch\n"
        "def here() -> None: ...\n"
        "LIMIT = 3\n"
        '__all__ = ["LIMIT", "here", "now_utc"]\n',
        encoding="utf-8",
    )
    assert reexports(source) == ["now_utc", "epoch"]


def test_module_names_say_what_they_hold_across_packages() -> None:
    """No two modules share a name (`desk.py` in three packages meant three different things);
    only the package markers and the numbered migrations may."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "comms").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if path.name != "__init__.py" and "/migrations/" not in name:
            seen.setdefault(path.name, []).append(name)
    assert {base: names for base, names in seen.items() if len(names) > 1} == {}
