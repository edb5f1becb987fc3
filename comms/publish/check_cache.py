"""What `comms check` worked out before, kept in var/ under the digest of its inputs.

Two checks depend on one file's bytes and the code alone, and cost most where nothing changed:
the links and images a content file names (its Markdown converted, unsanitised) and the checks
of a language's message catalog (the catalog parsed). Their results are kept like the content
cache's (`comms.content.content_cache`, whose storage this reuses, in its own folder): an entry
is named by the SHA-256 of the file's path and bytes, the versions of comms and the parsers,
the source of comms.content and of the modules below that compute the result, so an entry is
never stale, only unused. Everything that depends on more than one file (a link against the
built paths, an image's size, an issue's e-mail) is checked again every time.

The last check's whole report is kept too (`kept_report`, `keep_report`), under the file
stamps of what it read (`build_record.Stamps`, taken before it read them) and until the
first instant at which the time could change it (`build_record.until`): a check with the same
stamps before then prints it again without reading the site.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comms.content.content_cache import ContentCache
from comms.core.config import Config
from comms.core.errors import ContentError
from comms.core.files import write_private

if TYPE_CHECKING:
    from comms.publish.build_record import Stamps

#: Where the entries live, under the configuration's folder.
CHECK_DIR = Path("var") / "cache" / "check"
#: The last check's report, under the check's folder.
REPORT_FILE = "report.json"
#: The modules whose code computes a kept result (besides comms.content, in every key).
_SOURCES = ("link_check.py", "edition_build.py", "templating.py", "check_cache.py")


@functools.lru_cache(maxsize=1)
def _code() -> str:
    """The digest of the code behind a kept result: its modules, Python, Babel (catalogs)."""
    digest = hashlib.sha256(sys.version.encode() + b"\0")
    for name in ("babel", "email-validator"):
        try:
            digest.update(f"{name} {metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} -\0".encode())
    folder = Path(__file__).parent
    for source in _SOURCES:
        digest.update(source.encode() + b"\0" + (folder / source).read_bytes() + b"\0")
    return digest.hexdigest()


class CheckCache:
    """Results of `comms check` by input digest, one file per kind of result (a command that
    uses one kind leaves the others' file alone); saved once at the check's end."""

    def __init__(self, config: Config) -> None:
        self.folder = config.root / CHECK_DIR
        self.stores: dict[str, ContentCache] = {}

    def result(self, path: Path, raw: bytes, kind: str, make: Callable[[], Any]) -> Any:
        """What `make` gives for `raw` (the bytes `path` holds) as `kind`: kept, or made now."""
        store = self.stores.get(kind)
        if store is None:
            store = self.stores[kind] = ContentCache(self.folder / kind)
        key = store.key(path, raw, kind, {"code": _code()})
        kept = store.get(key)
        if kept is not None:
            return kept[0]
        made = make()
        store.put(key, (made, []))
        return made

    def problems(
        self, path: Path, raw: bytes, kind: str, make: Callable[[], list[ContentError]]
    ) -> list[ContentError]:
        """The problems `make` finds in `raw` (the bytes of `path`), kept or found now."""
        found: list[ContentError] = self.result(path, raw, kind, make)
        return list(found)

    def save(self) -> None:
        """Keep the entries this check used of each kind it used (those of edited or deleted
        files drop out)."""
        for store in self.stores.values():
            store.save()


@dataclass(frozen=True)
class Report:
    """What `comms check` printed about the site: its problems' lines, its summary, and how
    many of them are failures (the exit code)."""

    lines: list[str]
    summary: str
    failures: int


def kept_report(config: Config, stamps: Stamps, strict: bool) -> Report | None:
    """The last check's report if it read what `stamps` stamp, as strict, and it still holds."""
    try:
        raw = json.loads((config.root / CHECK_DIR / REPORT_FILE).read_text(encoding="utf-8"))
        if raw["stamps"] != stamps.inputs or raw["strict"] is not strict:
            return None
        if not config.now() < datetime.fromisoformat(raw["until"]):
            return None
        return Report(
            [str(line) for line in raw["lines"]], str(raw["summary"]), int(raw["failures"])
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def keep_report(
    config: Config, stamps: Stamps, strict: bool, report: Report, until: datetime
) -> None:
    """Keep `report` for the next check with the same `stamps` (a failure only costs a check)."""
    if stamps.racy:
        return  # a file changed within comms.core.files.SETTLE: its next change may not show
    record = {
        "stamps": stamps.inputs,
        "strict": strict,
        "until": until.isoformat(),
        "lines": report.lines,
        "summary": report.summary,
        "failures": report.failures,
    }
    try:
        write_private(config.root / CHECK_DIR / REPORT_FILE, json.dumps(record).encode())
    except OSError:
        pass
