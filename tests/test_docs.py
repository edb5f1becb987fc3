"""The documentation site covers every setting, command and option (Datasette's test_docs.py).

The references are generated from the code (docs/hooks.py for the configuration, mkdocs-click
for the command line), so these tests check that the code carries the words: a new setting
without a docstring, or a new command or option without help, fails here.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import markdown
import pytest
import yaml
from pydantic import BaseModel

from comms.cli import cli
from comms.core.config import Settings, _section_model
from comms.core.settings import Language, field_descriptions

from .conftest import ROOT

DOCS = ROOT / "docs"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings() -> Iterator[tuple[str, type[BaseModel], str]]:
    """Every setting as (key, the model that holds it, field name)."""
    for name in Settings.model_fields:
        section = _section_model(name)
        if section is None:
            yield name, Settings, name
        else:
            yield from ((f"{name}.{sub}", section, sub) for sub in section.model_fields)
    yield from ((f"languages.TAG.{sub}", Language, sub) for sub in Language.model_fields)


def _commands(
    command: click.Command = cli, path: tuple[str, ...] = ("comms",)
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("key, model, field", list(_settings()), ids=lambda v: str(v))
def test_every_setting_has_a_description(key: str, model: type[BaseModel], field: str) -> None:
    description = field_descriptions(model)[field]
    assert description and description.strip(), f"{key}: add a docstring below the field"


def test_every_section_says_what_it_holds() -> None:
    sections = [_section_model(name) for name in Settings.model_fields]
    assert all(s.__doc__ and s.__doc__.strip() for s in sections if s is not None)


def test_configuration_reference_lists_every_setting_with_its_default() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    hooks = _hooks()
    assert hooks.MARKER in page
    rendered = hooks.on_page_markdown(page)
    assert hooks.MARKER not in rendered
    rows = {row[0]: row for row in hooks.settings_rows()}
    missing = [key for key, _, _ in _settings() if f"| `{key}` |" not in rendered]
    assert missing == []
    # Defaults come from the models, not from prose that can drift.
    assert rows["delivery.concurrency"][2] == "`4`"
    assert rows["schedule.housekeeping_time"][2] == "`02:30`"
    assert rows["site.base_url"][3] == "`COMMS_SITE_BASE_URL`"
    assert rows["regions"][3] == "—"


@pytest.mark.parametrize("path, command", list(_commands()), ids=lambda v: str(v))
def test_every_command_and_option_has_help(path: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{path}: no docstring"
    undocumented = [
        p.opts[0]
        for p in command.params
        if isinstance(p, click.Option) and not p.hidden and not p.help
    ]
    assert undocumented == [], f"{path}: options without help"


def test_cli_reference_renders_every_command_and_option() -> None:
    html = markdown.Markdown(extensions=["mkdocs-click", "tables", "attr_list"]).convert(
        (DOCS / "cli.md").read_text(encoding="utf-8")
    )
    for path, command in _commands():
        # Each command's section starts with its usage line, under its own name as heading.
        assert f"{path} [OPTIONS]" in html, f"{path} is not in docs/cli.md"
        assert re.search(rf"<h\d[^>]*>{re.escape(path.split()[-1])}</h\d>", html), path
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[0] in html, f"{path} {param.opts[0]}"


def _nav_pages(entries: list[object]) -> Iterator[str]:
    for entry in entries:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from _nav_pages(value if isinstance(value, list) else [value])


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load(
        re.sub(r"!!python/\S+", "", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    )
    pages = {p.name for p in DOCS.glob("*.md")}
    assert set(_nav_pages(config["nav"])) == pages


def test_readme_links_into_the_docs_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert targets, "README links into docs/"
    assert [t for t in targets if not (ROOT / t).is_file()] == []


def _pages() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def _resolves(name: str) -> bool:
    """Whether a dotted name is a module of comms, or an attribute reached from one."""
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_every_dotted_name_in_the_docs_exists() -> None:
    """`comms.<package>.…` in a page names a module, class, function or constant that exists:
    a rename or a removal in the code fails here until the docs follow."""
    packages = {p.name for p in (ROOT / "comms").iterdir() if (p / "__init__.py").is_file()}
    stale = sorted(
        f"{page.name}: {name}"
        for page in _pages()
        for name in set(re.findall(r"\bcomms(?:\.\w+)+", page.read_text(encoding="utf-8")))
        # Logger names (comms.subscriptions, comms.scheduler) are no packages.
        if name.split(".")[1] in packages and not _resolves(name)
    )
    assert stale == []


def test_every_path_in_the_docs_exists() -> None:
    """A file of the repository a page names (`comms/…`, `tests/…`, `bench/…`) exists."""
    pattern = re.compile(r"(?<![\w/.~-])((?:comms|tests|bench)/[\w./-]*\w)")
    missing = sorted(
        f"{page.name}: {path}"
        for page in _pages()
        for path in set(pattern.findall(page.read_text(encoding="utf-8")))
        if not (ROOT / path).exists()
    )
    assert missing == []
