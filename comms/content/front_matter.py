"""Front matter: split a file at its `---` fences, parse the YAML with line marks, name problems."""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from comms.content.fields import GERMAN_STATUS
from comms.core.errors import ContentError

FENCE = "---"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text and refuses anchors and aliases.

    Aliases let a few hundred bytes expand into billions of nodes (or into themselves); front
    matter never needs them, so the first anchor or alias is an error at its line.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose as usual, after refusing an alias (`*name`) or an anchor (`&name`)."""
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (&name, *name) are not allowed in front matter; "
                "write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class CLoader(yaml.CSafeLoader):
    """libyaml's parser with Loader's resolvers: the same nodes and marks, many times faster.

    It cannot refuse anchors while composing, so texts that might hold one (any `&` or `*`),
    or a character the pure-Python reader refuses, go to Loader, as does every text it fails
    on: Loader's errors are the ones editors see.
    """


CLoader.yaml_implicit_resolvers = Loader.yaml_implicit_resolvers

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
#: PyYAML's own constructors of the other implicit scalars; they only read class tables.
_SCALARS = {
    tag: yaml.constructor.SafeConstructor.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:null")
}  # fmt: skip
_KEY_TAGS = frozenset({_STR, *_SCALARS})
_SCALAR_MAKER = yaml.constructor.SafeConstructor()
#: The deepest nesting `_plain` builds; deeper trees go to PyYAML's (non-recursive) constructor.
_PLAIN_DEPTH = 32


def _fast_path(text: str) -> bool:
    """Whether CLoader may parse `text`: no anchor or alias possible, nothing Loader refuses."""
    return "&" not in text and "*" not in text and not Loader.NON_PRINTABLE.search(text)


def _plain(node: yaml.Node, depth: int = 0) -> Any:
    """The data of a tree of plain mappings, lists and implicit scalars, as PyYAML's
    SafeConstructor makes it; raises for anything else (merge keys, explicit tags, ...).

    PyYAML's constructor walks every node through generators and a memo; this walk is a
    fraction of its cost, and rebuilding a kept tree with it is cheaper than a deep copy.
    """
    kind, tag = type(node), node.tag
    if kind is yaml.ScalarNode:
        if tag == _STR:
            return node.value
        return _SCALARS[tag](_SCALAR_MAKER, node)
    if depth >= _PLAIN_DEPTH:
        raise ValueError("deeper than the plain walk goes")
    if kind is yaml.MappingNode and tag == _MAP:
        data = {}
        for key, value in node.value:
            if type(key) is not yaml.ScalarNode or key.tag not in _KEY_TAGS:
                raise ValueError("a key PyYAML's constructor handles")
            data[_plain(key)] = _plain(value, depth + 1)
        return data
    if kind is yaml.SequenceNode and tag == _SEQ:
        return [_plain(child, depth + 1) for child in node.value]
    raise ValueError("a node PyYAML's constructor handles")


class Doc:
    """One file's front matter: the YAML node tree and where the YAML starts in the file."""

    def __init__(self, node: yaml.Node, offset: int) -> None:
        self.node = node
        self.offset = offset

    def line_of(self, node: yaml.Node) -> int:
        """The file line (1-based) a node starts on."""
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


def duplicate_keys(doc: Doc, node: yaml.Node, path: Path, errors: list[ContentError]) -> None:
    """Append an error for every key repeated in a mapping, at any depth."""
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
            duplicate_keys(doc, value, path, errors)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            duplicate_keys(doc, child, path, errors)


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


@functools.cache
def _field_submodel(model: type[BaseModel], key: str) -> tuple[type[BaseModel] | None, bool]:
    """`_submodel` of a field's annotation, worked out once per model and field."""
    return _submodel(model.model_fields[key].annotation)


def unknown_keys(
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
        inner, many = _field_submodel(model, key)
        if inner is None:
            continue
        if many and isinstance(value, list):
            for index, element in enumerate(value):
                found.extend(unknown_keys(inner, element, (*loc, key, index)))
        elif not many:
            found.extend(unknown_keys(inner, value, (*loc, key)))
    return found


def _describe(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def error_message(error: dict[str, Any]) -> str:
    """A pydantic validation error in the editor's words."""
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
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        german = [word for word, value in GERMAN_STATUS.items() if f"'{value}'" in expected]
        hint = f" (German: {', '.join(german)})" if german else ""
        return f"expected one of {expected}{hint}, got '{got}'"
    return str(error["msg"]).removeprefix("Value error, ")


def split(text: str, path: Path) -> tuple[str, str, int] | ContentError:
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


def _hint(problem: str, source: str) -> str:
    """Advice for YAML errors editors make often, judged from the message and the line."""
    value = source.partition(":")[2].strip()
    quoted = f"'{value}'" if '"' in value else f'"{value}"'
    if "mapping values are not allowed" in problem and ": " in value:
        return f"; put the value in quotes, it contains ': ' (e.g. {quoted})"
    if "found character '\\t'" in problem or "\t" in source:
        return "; replace the tab with spaces"
    if "while scanning a quoted scalar" in problem:
        return "; a quote is not closed: end the value with the same quote it starts with"
    if "found character '@'" in problem or "found character '`'" in problem:
        return f"; put the value in quotes (e.g. {quoted})"
    if "could not find expected ':'" in problem:
        return "; every line is 'key: value', and a continued value must be indented"
    if "expected <block end>, but found '<scalar>'" in problem and value[:1] in "\"'":
        return "; text after the closing quote: quote the whole value or use the other quote"
    if "while parsing a flow sequence" in problem:
        return "; a list opened with '[' is not closed with ']'"
    return ""


#: The longest front matter text kept parsed (the cache holds at most 4096 of them).
CACHED_TEXT = 16_384


class _Parsed:
    """A front matter as the parse cache keeps it: the node tree, and the data once.

    The data its parse made goes to the first reader, who may change it (a cold read of a
    site never reads a text twice, so it is never copied); later readers get data of their
    own, rebuilt from the read-only node tree, or a deep copy where `_plain` cannot build it.
    """

    __slots__ = ("doc", "fresh", "kept")

    def __init__(self, data: Any, doc: Doc, plain: bool) -> None:
        self.doc = doc
        self.fresh = [data] if plain else []
        self.kept = None if plain else data

    def data(self) -> Any:
        """Data no other reader holds."""
        try:
            return self.fresh.pop()  # atomic: two threads never both get it
        except IndexError:
            pass
        return _plain(self.doc.node) if self.kept is None else copy.deepcopy(self.kept)


def _construct(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.Node) -> tuple[Any, bool]:
    """The data of a node tree, and whether `_plain` made it (and so can make it again)."""
    try:
        return _plain(node), True
    except Exception:  # PyYAML's constructor builds it, or raises its own error
        return loader.construct_document(node), False


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> _Parsed | None:
    """The data and node tree of a front matter text, None for an empty one; YAML errors raise.

    Kept per text: the preview, the follower and each command of a process read the same
    unchanged files again, and the pure-Python parser (needed for its error marks) is the
    largest cost of reading content. The node tree is read-only.
    """
    if _fast_path(text):
        fast = CLoader(text)
        try:
            node = fast.get_single_node()
            if node is None:
                return None
            data, plain = _construct(fast, node)
            return _Parsed(data, Doc(node, 2), plain)
        except yaml.YAMLError:
            pass  # parsed again below, for Loader's message
        finally:
            fast.dispose()
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        data, plain = _construct(loader, node)
        return _Parsed(data, Doc(node, 2), plain)
    finally:
        loader.dispose()


def parse_yaml(text: str, path: Path) -> tuple[Any, Doc] | ContentError:
    """The front matter as data plus its node tree, or the first problem with its line."""
    for number, source_line in enumerate(text.splitlines(), start=2):
        indent = source_line[: len(source_line) - len(source_line.lstrip(" \t"))]
        if "\t" in indent:
            return ContentError(path, number, "tab character in front matter: indent with spaces")
    try:
        # A front matter is a few hundred bytes; an outsized one is parsed, never kept.
        parsed = _parsed(text) if len(text) <= CACHED_TEXT else _parsed.__wrapped__(text)
        if parsed is None:
            return ContentError(path, 2, "empty front matter")
        data, doc = parsed.data(), parsed.doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 2 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} on line {int(exc.context_mark.line) + 2})"
        source = text.splitlines()[line - 2] if 0 <= line - 2 < len(text.splitlines()) else ""
        return ContentError(path, line, f"YAML error: {problem}{_hint(problem, source)}")
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 2
        return ContentError(path, line, f"YAML error: unacceptable character #x{exc.character:04x}")
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        return ContentError(path, 1, f"YAML error: {exc}")
    if not isinstance(data, dict):
        return ContentError(path, 2, "front matter must be a mapping of keys to values")
    return data, doc
