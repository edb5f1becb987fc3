"""MkDocs hook: the configuration reference, generated from the settings models."""

from __future__ import annotations

import datetime
import re
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from comms.core.config import Settings, env_names
from comms.core.settings import Language, field_descriptions

MARKER = "<!-- settings-reference -->"


def _section(name: str) -> type[BaseModel] | None:
    annotation = Settings.model_fields[name].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


WORDS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _type(field: FieldInfo) -> str:
    annotation = field.annotation
    if isinstance(annotation, type):
        text = annotation.__name__
    else:
        text = re.sub(r"\b[a-z_]+\.", "", str(annotation)).replace("NoneType", "None")
    text = re.sub(r"\b(str|int|float|bool)\b", lambda m: WORDS[m.group(1)], text)
    text = re.sub(r"Literal\[([^]]*)\]", lambda m: "one of " + m.group(1).replace("'", "`"), text)
    text = text.replace(" | None", ", optional")
    limits = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            bound = getattr(item, attr, None)
            if bound is not None:
                limits.append(f"{sign} {bound}")
    return text + (f" ({', '.join(limits)})" if limits else "")


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, datetime.time):
        return f"`{value:%H:%M}`"
    if isinstance(value, dict):
        return ", ".join(f"`{key}`" for key in value) or "`{}`"
    if isinstance(value, str):
        return f"`{value}`" if len(value) <= 60 else f"„{value}“"
    return f"`{value}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def settings_rows() -> list[tuple[str, str, str, str, str]]:
    """Every setting as (key, type, default, environment variable, description)."""
    env = {".".join(path): name for name, path in env_names().items()}
    rows = []
    for name, field in Settings.model_fields.items():
        section = _section(name)
        described = field_descriptions(section or Settings)
        pairs = (
            [(f"{name}.{sub}", info, described[sub]) for sub, info in section.model_fields.items()]
            if section is not None
            else [(name, field, described[name])]
        )
        for key, info, text in pairs:
            variable = f"`{env[key]}`" if key in env else "—"
            rows.append((key, _type(info), _default(info.default), variable, text))
    return rows


def settings_reference() -> str:
    """The configuration reference as Markdown: one table per section."""
    parts: list[str] = []
    top = [row for row in settings_rows() if "." not in row[0]]
    groups: list[tuple[str, str, list[tuple[str, str, str, str, str]]]] = [
        ("Top level", "Keys outside any table.", top)
    ]
    for name in Settings.model_fields:
        section = _section(name)
        if section is not None:
            rows = [row for row in settings_rows() if row[0].startswith(f"{name}.")]
            groups.append((f"[{name}]", section.__doc__ or "", rows))
    described = field_descriptions(Language)
    languages = [
        (f"languages.TAG.{sub}", _type(info), _default(info.default), "—", described[sub])
        for sub, info in Language.model_fields.items()
    ]
    groups.append(("[languages.TAG]", Language.__doc__ or "", languages))
    for title, doc, rows in groups:
        parts.append(f"### `{title}`" if title.startswith("[") else f"### {title}")
        parts.append(_cell(doc))
        parts.append("| key | type | default | environment | meaning |\n|---|---|---|---|---|")
        parts.extend(
            f"| `{key}` | {_cell(kind)} | {_cell(default)} | {variable} | {_cell(text)} |"
            for key, kind, default, variable, text in rows
        )
    return "\n\n".join(parts).replace("|\n\n|", "|\n|")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace the marker in docs/configuration.md with the generated reference."""
    return markdown.replace(MARKER, settings_reference()) if MARKER in markdown else markdown
