"""Content files read before, kept in var/ under the digest of everything their reading used.

Reading a file (YAML with line marks, Markdown, validation) is most of the cost of `comms
check` and of a rebuild where little changed. An entry is named by the SHA-256 of the file's
bytes and path, its kind, the reading context (time zone, regions, topics, language), the
versions of comms and of the libraries that read it, and the source of comms.content itself:
a change to any of them is a new name, so an entry is never stale, only unused. The entries
are one file, replaced whole (temp file + rename, 0600) with those a reading used: two
processes reading at once each leave a file whose every entry is right. Each entry is pickled
on its own inside it, so a save after one file changed pickles one entry, not thousands.
The folder is comms's own, like the secret key beside it: what is in it is trusted as the code is.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from comms.core.errors import ContentError
from comms.core.files import write_private

#: Where the entries live, under the configuration's folder.
CACHE_DIR = Path("var") / "cache" / "content"
#: Raised when what an entry holds changes shape, so old entries are never read.
LAYOUT = 2
PACK = "items.pickle"

#: What reading one file gives: the item (None if it has errors) and its problems.
Result = tuple[Any, list[ContentError]]


@functools.lru_cache(maxsize=1)
def _code_digest() -> bytes:
    """The digest of what reads content: comms.content's source and the parsers' versions."""
    digest = hashlib.sha256(f"layout {LAYOUT}\0".encode())
    for name in ("comms", "markdown", "nh3", "pydantic", "pyyaml"):
        try:
            digest.update(f"{name} {metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} -\0".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.digest()


def _context_text(context: Mapping[str, Any]) -> str:
    """The reading context as stable text (sets sorted)."""
    parts = []
    for key in sorted(context):
        value = context[key]
        shown = sorted(map(str, value)) if isinstance(value, set | frozenset) else str(value)
        parts.append(f"{key}={shown}")
    return "\0".join(parts)


class ContentCache:
    """Read results by input digest, kept in one file; every failure to use it is a miss."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._old: dict[str, bytes] | None = None
        #: The entries this reading used or made, pickled: what `save` keeps.
        self.used: dict[str, bytes] = {}
        self._added = False

    @property
    def file(self) -> Path:
        """The file that holds every entry (one file: creating thousands costs seconds)."""
        return self.folder / PACK

    def key(self, path: Path, raw: bytes, kind: str, context: Mapping[str, Any]) -> str:
        """The entry name for reading `raw` (the bytes of `path`) as `kind` in `context`."""
        digest = hashlib.sha256(_code_digest())
        for part in (str(path).encode(), kind.encode(), _context_text(context).encode()):
            digest.update(part + b"\0")
        digest.update(raw)
        return digest.hexdigest()

    def _entries(self) -> dict[str, bytes]:
        if self._old is None:
            try:
                loaded = pickle.loads(self.file.read_bytes())  # comms's own folder: see the module
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                loaded = {}
            self._old = loaded if isinstance(loaded, dict) else {}
        return self._old

    def get(self, key: str) -> Result | None:
        """The result stored under `key`, or None."""
        raw = self._entries().get(key)
        if not isinstance(raw, bytes):
            return None
        try:
            result: Result = pickle.loads(raw)  # comms's own folder: see the module
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
            return None
        self.used[key] = raw
        return result

    def put(self, key: str, result: Result) -> None:
        """Keep `result` under `key` (written by `save`)."""
        try:
            self.used[key] = pickle.dumps(result, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError):
            return  # only read again next time
        self._added = True

    def save(self) -> None:
        """Replace the file with the entries this reading used, if they differ from it: files
        edited or gone since drop out. A read-only or full disk only costs the next run time."""
        if not self._added and len(self.used) == len(self._entries()):
            return
        try:
            write_private(self.file, pickle.dumps(self.used, protocol=5))
        except (OSError, pickle.PicklingError):
            pass
