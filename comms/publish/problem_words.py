"""Problems (`PATH:LINE: message`) in the site's language for the pages an editor reads.

`comms check` speaks English (its messages are a contract); `comms preview` shows the same
problems in `site.language`, worded by the catalog `templates/locale/<lang>/LC_MESSAGES/
problems.po`. Each of its msgids is a pattern: `{name}` stands for any text, and a name that
starts with `text` is worded through the catalog too. A message no pattern matches stays as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from comms.core.errors import ContentError
from comms.publish.templating import LOCALES

DOMAIN = "problems"
#: Catalog entries that frame a message rather than match one.
FRAMES = frozenset({"field '{field}': {text}", "warning: {text}"})
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog_file(language: str) -> Path:
    """The problem catalog of one language (it need not exist)."""
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _pattern(msgid: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(msgid)
    # Even parts are literal text, odd ones the names of placeholders.
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)"
        for index, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$", re.S)


@lru_cache(maxsize=8)
def _patterns(language: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    path = catalog_file(language)
    if not path.is_file():
        return ()
    with path.open("rb") as handle:
        catalog = read_po(handle, domain=DOMAIN)
    found = [
        (_pattern(message.id), message.string)
        for message in catalog
        if isinstance(message.id, str) and message.id and message.id not in FRAMES
        and isinstance(message.string, str) and message.string
    ]  # fmt: skip
    # The most literal text first: "unknown key 'x'; did you mean 'y'?" is not "unknown key …".
    found.sort(key=lambda pair: -len(_PLACEHOLDER.sub("", pair[0].pattern)))
    return tuple(found)


def worded(language: str, message: str) -> str:
    """`message` (one of comms check's) in `language`, or unchanged if the catalog has no
    pattern for it."""
    for pattern, template in _patterns(language):
        match = pattern.match(message)
        if match is None:
            continue
        values = {
            name: worded(language, value) if name.startswith("text") else value
            for name, value in match.groupdict().items()
        }
        return template.format(**values)
    return message


def problem_line(problem: ContentError, root: Path, language: str) -> str:
    """A problem as `comms check` prints it (`PATH:LINE: …`), its words in `language`."""
    text = worded(language, problem.message)
    if problem.field:
        text = _framed(language, "field '{field}': {text}", field=problem.field, text=text)
    if problem.warning:
        text = _framed(language, "warning: {text}", text=text)
    location = ContentError(problem.path, problem.line, "").format(root)
    return location + text


def _framed(language: str, msgid: str, **values: str) -> str:
    """One of the catalog's frames (a field's name, "warning") around a worded message."""
    return _frames(language).get(msgid, msgid).format(**values)


@lru_cache(maxsize=8)
def _frames(language: str) -> dict[str, str]:
    path = catalog_file(language)
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, domain=DOMAIN)
    return {
        message.id: message.string
        for message in catalog
        if isinstance(message.id, str) and message.id in FRAMES and isinstance(message.string, str)
        and message.string
    }  # fmt: skip
