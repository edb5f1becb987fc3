"""content/ → (site, errors): front matter with line marks, safe HTML, validation, links."""

from __future__ import annotations

import re
import types
import typing
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ValidationError

from comms.content.markup import markdown_to_html
from comms.content.models import (
    FOLDERS,
    KINDS,
    Award,
    Event,
    Issue,
    Item,
    Kind,
    Site,
    front_matter_fields,
    instant,
    parse_when,
)
from comms.core.errors import ContentError

FENCE = "---"
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_IMG_RE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ALT_RE = re.compile(r"""\balt\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)
_SRC_RE = re.compile(r"""\bsrc\s*=\s*("([^"]*)"|'([^']*)')""", re.IGNORECASE)


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text, so the reader parses them and names bad ones."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Doc:
    """One file's front matter: the YAML node tree and where the YAML starts in the file."""

    def __init__(self, node: yaml.Node, offset: int) -> None:
        self.node = node
        self.offset = offset

    def line_of(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + self.offset

    def find(self, loc: Iterable[Any]) -> tuple[int, bool]:
        """The line of the deepest node on `loc`, and whether the whole path was found."""
        node: yaml.Node = self.node
        line = 1
        for part in loc:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        line, child = self.line_of(key), value
                        if not isinstance(value, yaml.ScalarNode):
                            break
                        line = self.line_of(value)
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if 0 <= part < len(node.value):
                    child = node.value[part]
                    line = self.line_of(child)
            if child is None:
                return line, False
            node = child
        return line, True


def _duplicates(doc: _Doc, node: yaml.Node, path: Path, errors: list[ContentError]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    errors.append(
                        ContentError(
                            path,
                            doc.line_of(key),
                            f"duplicate key '{key.value}' (first on line {seen[key.value]})",
                        )
                    )
                else:
                    seen[key.value] = doc.line_of(key)
            _duplicates(doc, value, path, errors)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _duplicates(doc, child, path, errors)


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside `M`, `M | None` or `list[M]`, and whether it is a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        inner, _ = _submodel(args[0])
        return inner, True
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            inner, many = _submodel(arg)
            if inner is not None:
                return inner, many
    return None, False


def _unknown_keys(
    model: type[BaseModel], data: Any, loc: tuple[Any, ...], allowed: list[str] | None = None
) -> list[tuple[tuple[Any, ...], str]]:
    """Keys the schema does not know, as (loc, dotted name) pairs, descending into sub-models."""
    if not isinstance(data, dict):
        return []
    names = allowed if allowed is not None else list(model.model_fields)
    found: list[tuple[tuple[Any, ...], str]] = []
    for key, value in data.items():
        if key not in names:
            found.append(((*loc, key), ".".join(str(p) for p in (*loc, key))))
            continue
        inner, many = _submodel(model.model_fields[key].annotation)
        if inner is None:
            continue
        if many and isinstance(value, list):
            for index, element in enumerate(value):
                found.extend(_unknown_keys(inner, element, (*loc, key, index)))
        elif not many:
            found.extend(_unknown_keys(inner, value, (*loc, key)))
    return found


def _describe(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _error_message(error: dict[str, Any]) -> str:
    kind = error["type"]
    got = _describe(error.get("input"))
    if kind == "missing":
        return "required field is missing"
    if kind in ("string_type",):
        return f"expected text, got '{got}'"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got '{got}'"
    if kind == "list_type":
        return f"expected a list, got '{got}'"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of keys to values, got '{got}'"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got '{got}'"
    return str(error["msg"]).removeprefix("Value error, ")


def _split(text: str, path: Path) -> tuple[str, str, int] | ContentError:
    """Front matter text, body text, and the file line the body starts on."""
    if not text.strip():
        return ContentError(path, 1, "empty file: expected front matter between '---' lines")
    lines = text.splitlines(keepends=True)
    if lines[0].rstrip() != FENCE:
        return ContentError(path, 1, "missing front matter: the file must start with a '---' line")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == FENCE:
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    return ContentError(path, 1, "front matter is never closed: add a '---' line after it")


def _parse_yaml(text: str, path: Path) -> tuple[Any, _Doc] | ContentError:
    for number, source_line in enumerate(text.splitlines(), start=2):
        indent = source_line[: len(source_line) - len(source_line.lstrip(" \t"))]
        if "\t" in indent:
            return ContentError(path, number, "tab character in front matter: indent with spaces")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return ContentError(path, 2, "empty front matter")
        doc = _Doc(node, 2)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 2 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} on line {int(exc.context_mark.line) + 2})"
        return ContentError(path, line, f"YAML error: {problem}")
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 2
        return ContentError(path, line, f"YAML error: unacceptable character #x{exc.character:04x}")
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        return ContentError(path, 1, f"YAML error: {exc}")
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        return ContentError(path, 2, "front matter must be a mapping of keys to values")
    return data, doc


def _image_errors(html: str, body: str, body_line: int, path: Path) -> list[ContentError]:
    errors = []
    for tag in _IMG_RE.findall(html):
        alt = _ALT_RE.search(tag)
        if alt and (alt.group(2) or alt.group(3) or "").strip():
            continue
        src_match = _SRC_RE.search(tag)
        src = (src_match.group(2) or src_match.group(3) or "") if src_match else ""
        line = body_line
        for offset, text in enumerate(body.splitlines()):
            if src and src in text:
                line = body_line + offset
                break
        errors.append(ContentError(path, line, f"image without alt text: '{src}'"))
    return errors


def _moment(value: Any, tz: ZoneInfo, end: bool = False) -> datetime | None:
    """A front matter date or date-time as an instant (an all-day end is the next midnight)."""
    if value is None:
        return None
    try:
        return instant(parse_when(value, tz), tz, end)
    except (ValueError, TypeError):
        return None  # the field's own error says what is wrong with it


def _semantic(
    kind: Kind, data: dict[str, Any], doc: _Doc, path: Path, tz: ZoneInfo
) -> list[ContentError]:
    """Checks across fields, on the raw front matter, so they run beside every field error."""
    errors: list[ContentError] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        errors.append(ContentError(path, doc.find(loc)[0], message, field=".".join(map(str, loc))))

    if kind.model is Event:
        start = _moment(data.get("start"), tz)
        end = _moment(data.get("end"), tz, end=True)
        if start is not None and end is not None and end < start:
            add(("end",), "the event ends before it starts")
        if data.get("location") is None and data.get("online") is None:
            add(("location",), "required field is missing (or give 'online')")
    call = data.get("call")
    if kind.model is Award and isinstance(call, dict):
        opens, deadline = _moment(call.get("opens"), tz), _moment(call.get("deadline"), tz)
        if opens is not None and deadline is not None and deadline < opens:
            add(("call", "deadline"), "the deadline is before the call opens")
    return errors


def read_file(
    path: Path, kind: Kind, context: dict[str, Any]
) -> tuple[Item | None, list[ContentError]]:
    """Read one content file; never raises for bad content, returns the errors instead."""
    errors: list[ContentError] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [ContentError(path, 1, f"cannot read file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 1].hex()
        return None, [ContentError(path, line, f"not valid UTF-8 (byte 0x{bad}); save as UTF-8")]
    # NFC: a decomposed "ü" would otherwise differ from the composed one in slugs and subjects.
    text = unicodedata.normalize("NFC", text.removeprefix("\ufeff"))
    if not SLUG_RE.match(path.stem):
        errors.append(
            ContentError(
                path, 1, f"file name '{path.name}' is not a slug: use a-z, 0-9 and '-' only"
            )
        )
    parts = _split(text, path)
    if isinstance(parts, ContentError):
        return None, [*errors, parts]
    front, body, body_line = parts
    parsed = _parse_yaml(front, path)
    if isinstance(parsed, ContentError):
        return None, [*errors, parsed]
    data, doc = parsed
    _duplicates(doc, doc.node, path, errors)
    fields = front_matter_fields(kind.model)
    for loc, dotted in _unknown_keys(kind.model, data, (), fields):
        errors.append(ContentError(path, doc.find(loc)[0], f"unknown key '{dotted}'", warning=True))
        if len(loc) == 1:
            data.pop(loc[0])
    errors.extend(_semantic(kind, data, doc, path, context["tz"]))
    try:
        item = kind.model.model_validate(data, context=context)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            line, _ = doc.find(loc)
            name = ".".join(str(p) for p in loc if not isinstance(p, int)) or None
            errors.append(ContentError(path, line, _error_message(dict(error)), field=name))
        return None, errors
    html = markdown_to_html(body)
    errors.extend(_image_errors(html, body, body_line, path))
    lines: dict[str, int] = {}
    for key, value in doc.node.value:
        if isinstance(key, yaml.ScalarNode):
            lines[key.value] = doc.line_of(key)
            if isinstance(value, yaml.SequenceNode):
                for index, element in enumerate(value.value):
                    lines[f"{key.value}.{index}"] = doc.line_of(element)
    item = item.model_copy(
        update={"slug": path.stem, "path": path, "body": body, "html": html, "lines": lines}
    )
    if any(not e.warning for e in errors):
        return None, errors
    return item, errors


def _references(site: Site, issue: Issue) -> list[ContentError]:
    errors: list[ContentError] = []
    for field_name, kind in (("events", "event"), ("practices", "practice")):
        for index, slug in enumerate(getattr(issue, field_name)):
            if slug not in site.by_kind(kind):
                line = issue.line(f"{field_name}.{index}")
                folder = KINDS[kind].folder
                errors.append(
                    ContentError(
                        issue.path, line, f"no {kind} '{slug}' in {folder}/", field=field_name
                    )
                )
    if issue.award and issue.award not in site.awards:
        errors.append(
            ContentError(
                issue.path,
                issue.line("award"),
                f"no award '{issue.award}' in awards/",
                field="award",
            )
        )
    return errors


def content_files(content_dir: Path) -> tuple[list[tuple[Path, Kind]], list[ContentError]]:
    """Every Markdown file under the kind folders, sorted, plus warnings for strays."""
    files: list[tuple[Path, Kind]] = []
    warnings: list[ContentError] = []
    if not content_dir.is_dir():
        return [], []
    for path in sorted(content_dir.rglob("*.md")):
        folder = path.relative_to(content_dir).parts[0]
        kind = FOLDERS.get(folder)
        if kind is None or path.parent == content_dir:
            known = ", ".join(sorted(FOLDERS))
            warnings.append(
                ContentError(path, 1, f"not in a content folder ({known}); ignored", warning=True)
            )
            continue
        files.append((path, kind))
    return files, warnings


def read_content(
    content_dir: Path, tz: ZoneInfo, regions: Iterable[str], topics: Iterable[str]
) -> tuple[Site, list[ContentError]]:
    """Read every content file; return the valid items and every problem found."""
    context = {"tz": tz, "regions": set(regions), "topics": set(topics)}
    site = Site(tz=tz)
    files, errors = content_files(content_dir)
    if not content_dir.is_dir():
        errors.append(ContentError(content_dir, 1, "content folder not found"))
    first_seen: dict[tuple[str, str], Path] = {}
    numbers: dict[int, Path] = {}
    for path, kind in files:
        item, problems = read_file(path, kind, context)
        errors.extend(problems)
        if item is None:
            continue
        key = (kind.name, item.slug)
        if key in first_seen:
            other = first_seen[key].relative_to(content_dir).as_posix()
            errors.append(ContentError(path, 1, f"duplicate slug '{item.slug}' (also {other})"))
            continue
        if isinstance(item, Issue):
            if item.number in numbers:
                other = numbers[item.number].relative_to(content_dir).as_posix()
                errors.append(
                    ContentError(
                        path,
                        item.line("number"),
                        f"issue number {item.number} is also used by {other}",
                        field="number",
                    )
                )
                continue
            numbers[item.number] = path
        first_seen[key] = path
        site.by_kind(kind.name)[item.slug] = item
    for issue in site.issues.values():
        errors.extend(_references(site, issue))
    return site, errors
