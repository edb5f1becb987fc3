"""Front matter values changed in place, as a person would change them: the value of a key is
replaced on its line(s), everything else (key order, comments, quotes, the body) stays byte
for byte as it was, and a key the file lacks is added at the end of the front matter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from comms.content.front_matter import FENCE, Loader, parse_yaml, split

_NOWHERE = Path("-")


@dataclass(frozen=True)
class Slot:
    """Where a top-level key's value stands in the file (line numbers 0-based, in the file)."""

    key: str
    #: The key's line.
    line: int
    #: `scalar` and `flow` (a `[a, b]` list) stand on the key's line from `start` to `end`;
    #: `null` is a key without a value; `block` is a list of one `- item` line each, on the
    #: lines `first` to `last` (inclusive), each starting with `prefix`.
    shape: str
    start: int = 0
    end: int = 0
    first: int = 0
    last: int = 0
    prefix: str = "  - "
    #: The value's quote (`"` or `'`), empty for a plain one.
    quote: str = ""


@dataclass(frozen=True)
class FrontMatter:
    """A file's front matter: its values, the places an editor's form may change, the body."""

    data: dict[str, Any]
    slots: dict[str, Slot]
    #: Where the body starts (a character offset into the file's text).
    body_start: int
    #: The line of the closing `---` (0-based).
    fence_line: int

    def body(self, text: str) -> str:
        """The body of `text` (the file this was read from)."""
        return text[self.body_start :]


def _single_line(node: yaml.Node) -> bool:
    return bool(node.start_mark.line == node.end_mark.line)


def _slot(key: yaml.ScalarNode, value: yaml.Node, offset: int) -> Slot | None:
    line = int(key.start_mark.line) + offset
    if key.start_mark.column != 0:
        return None
    if isinstance(value, yaml.ScalarNode):
        if value.style in ("|", ">") or not _single_line(value):
            return None
        if value.value == "" and not value.style:
            return Slot(key.value, line, "null")
        if value.start_mark.line != key.start_mark.line:
            return None
        return Slot(
            key.value, line, "scalar", int(value.start_mark.column),
            int(value.end_mark.column), quote=value.style or "",
        )  # fmt: skip
    if not isinstance(value, yaml.SequenceNode):
        return None
    items = value.value
    if not all(isinstance(item, yaml.ScalarNode) and _single_line(item) for item in items):
        return None
    if value.flow_style:
        if not _single_line(value) or value.start_mark.line != key.start_mark.line:
            return None
        start, end = int(value.start_mark.column), int(value.end_mark.column)
        return Slot(key.value, line, "flow", start, end)
    rows = [int(item.start_mark.line) for item in items]
    if rows != list(range(rows[0], rows[0] + len(rows))) or rows[0] <= key.start_mark.line:
        return None
    return Slot(
        key.value, line, "block", first=rows[0] + offset, last=rows[-1] + offset,
        prefix=" " * int(value.start_mark.column) + "- ",
    )  # fmt: skip


def read_front_matter(text: str) -> FrontMatter | None:
    """The front matter of a file's text, or None when it cannot be read (the raw editor and
    the check say why)."""
    parts = split(text, _NOWHERE)
    if not isinstance(parts, tuple):
        return None
    front, _body, body_line = parts
    parsed = parse_yaml(front, _NOWHERE)
    if not isinstance(parsed, tuple):
        return None
    data, doc = parsed
    slots: dict[str, Slot] = {}
    if isinstance(doc.node, yaml.MappingNode):
        for key, value in doc.node.value:
            if isinstance(key, yaml.ScalarNode):
                # The node tree counts lines of the front matter; it starts on the file's 2nd.
                found = _slot(key, value, 1)
                if found is not None:
                    slots[key.value] = found
                else:
                    slots.pop(key.value, None)
    lines = text.splitlines(keepends=True)
    fence = body_line - 2
    return FrontMatter(data, slots, sum(len(line) for line in lines[: fence + 1]), fence)


def _plain(text: str) -> bool:
    """Whether `text` may stand unquoted: YAML reads it back as the same text."""
    if not text or text != text.strip() or "#" in text or ": " in text or "\n" in text:
        return False
    try:
        return bool(yaml.load(text, Loader=Loader) == text)
    except yaml.YAMLError:
        return False


def scalar(text: str, quote: str = "") -> str:
    """`text` as a YAML value on one line: plain where YAML reads it back unchanged (or
    `quote` asks for quotes), else in double quotes."""
    if quote != '"' and quote != "'" and _plain(text):
        return text
    if quote == "'" and "'" not in text and "\n" not in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def flow_list(values: list[str]) -> str:
    """A list of text values as `[a, b]`."""
    return "[" + ", ".join(scalar(value) for value in values) + "]"


#: What a form changes: a key's new value, one line of YAML (`""`: none), or a list.
Change = str | list[str]


def _after_colon(line: str, key: str) -> int:
    return len(key) + 1 if line.startswith(f"{key}:") else line.index(":") + 1


def _ending(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body) :]


def set_values(text: str, front: FrontMatter, changes: dict[str, Change]) -> str:
    """`text` (the file `front` was read from) with each key of `changes` set to its value,
    in place; keys the file lacks are added before the closing `---` (empty ones are not)."""
    lines = text.splitlines(keepends=True)
    removed: set[int] = set()
    added: list[str] = []
    for key, value in changes.items():
        slot = front.slots.get(key)
        if slot is None:
            if key in front.data:
                raise ValueError(f"the value of '{key}' is not one the form can change")
            if value:
                shown = flow_list(value) if isinstance(value, list) else value
                added.append(f"{key}: {shown}\n")
            continue
        body, end = _ending(lines[slot.line])
        if slot.shape == "block" and isinstance(value, list) and value:
            for index in range(slot.first, slot.last + 1):
                removed.add(index)
            _, item_end = _ending(lines[slot.last])
            rows = "".join(f"{slot.prefix}{scalar(item)}\n" for item in value)
            lines[slot.last] = rows[:-1] + (item_end or "")
            removed.discard(slot.last)
            continue
        shown = flow_list(value) if isinstance(value, list) else value
        if slot.shape == "block":
            removed.update(range(slot.first, slot.last + 1))
            colon = _after_colon(body, key)
            body = f"{body[:colon]} {shown}{body[colon:]}"
        elif slot.shape == "null":
            colon = _after_colon(body, key)
            body = f"{body[:colon]} {shown}{body[colon:]}" if shown else body
        else:
            before, after = body[: slot.start], body[slot.end :]
            body = f"{before}{shown}{after}" if shown else before.rstrip() + after
        lines[slot.line] = body + end
    kept = [line for index, line in enumerate(lines) if index not in removed]
    fence = front.fence_line - len([index for index in removed if index < front.fence_line])
    if added:
        if not kept[fence - 1].endswith("\n"):
            kept[fence - 1] += "\n"
        kept[fence:fence] = added
    assert kept[fence + len(added)].rstrip() == FENCE
    return "".join(kept)


def with_body(text: str, front: FrontMatter, body: str) -> str:
    """`text` with its body (all after the closing `---`) replaced by `body`."""
    return text[: front.body_start] + body
