"""One top-level field of a content file's front matter changed as a person would change it:
its line rewritten (or added before the closing fence), every other line, comment and blank
kept as it was."""

from __future__ import annotations

import re

from comms.content.front_matter import FENCE
from comms.core.errors import CommsError


def set_field(text: str, key: str, value: str) -> str:
    """`text` with the front matter line of `key` reading `key: value` (a plain scalar that
    needs no quoting, such as `2026-03-02 09:00`); added before the closing fence when the
    field is missing. CommsError when the text has no front matter or the field is a block."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != FENCE:
        raise CommsError("the file has no front matter (it must start with ---)")
    end = next((n for n in range(1, len(lines)) if lines[n].rstrip("\r\n") == FENCE), None)
    if end is None:
        raise CommsError("the front matter is never closed (a line --- is missing)")
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    pattern = re.compile(rf"^{re.escape(key)}\s*:(.*?)(\s+#.*)?$")
    for n in range(1, end):
        found = pattern.match(lines[n].rstrip("\r\n"))
        if found is None:
            continue
        following = lines[n + 1] if n + 1 < end else ""
        if not found.group(1).strip() and following[:1] in (" ", "\t", "-"):
            raise CommsError(f"the field {key} holds a block; change it in the editor")
        comment = found.group(2) or ""
        lines[n] = f"{key}: {value}{comment}{newline}"
        return "".join(lines)
    lines.insert(end, f"{key}: {value}{newline}")
    return "".join(lines)
