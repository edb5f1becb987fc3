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

A file whose stamp (device, inode, size, mtime, ctime) is as a reading recorded it is not read
again: its entry name is taken from the record (git's "racily clean" rule). A stamp is recorded
only if the file had not changed within `SETTLE` before the reading began, on the file
system's clock, so a change after it always shows in the mtime or the ctime (which no one can
set back, unlike the mtime with `touch -r`). The stamps are their own file beside the entries:
a stamp whose entry is gone is only a miss.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from comms.core.errors import ContentError
from comms.core.files import SETTLE, Stamp, file_clock, file_stamp, write_private

#: Where the entries live, under the configuration's folder.
CACHE_DIR = Path("var") / "cache" / "content"
#: Raised when what an entry holds changes shape, so old entries are never read.
LAYOUT = 3
PACK = "items.pickle"
#: The stamps of the files whose entries the pack holds: `{(path, kind, context): (stamp, key)}`.
STAMPS = "stamps.pickle"
#: Touched at the start of a reading: its mtime is "now" on the file system's clock.
CLOCK = "clock"
#: Each entry's pickle names the file's own path by this id (a `Path` unpickled costs more).
_OWN_PATH = "path"

#: A file as a reading names it: path, kind and the reading context's text.
Seen = tuple[str, str, str]

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


class _Pickler(pickle.Pickler):
    """Pickles an entry with its file's path as a reference (`_Unpickler` puts it back)."""

    def __init__(self, file: io.BytesIO, path: Path | None) -> None:
        super().__init__(file, protocol=5)
        self.path = path

    def persistent_id(self, obj: Any) -> str | None:
        """The reference for the file's own path; None: `obj` is pickled as it is."""
        if self.path is not None and type(obj) is type(self.path) and obj == self.path:
            return _OWN_PATH
        return None


class _Unpickler(pickle.Unpickler):
    """Unpickles an entry, with the `Path` object its reader holds for its file's path."""

    def __init__(self, file: io.BytesIO, path: Path | None) -> None:
        super().__init__(file)
        self.path = path

    def persistent_load(self, pid: Any) -> Any:
        """The object a reference (`_Pickler.persistent_id`) stands for."""
        if pid != _OWN_PATH or self.path is None:
            raise pickle.UnpicklingError("unknown reference")
        return self.path


def pickled(result: Result, path: Path | None = None) -> bytes | None:
    """`result` as an entry holds it (`path`: the file it was read from); None if it cannot
    be pickled."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, path).dump(result)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    return buffer.getvalue()


def _loaded(entry: bytes, path: Path | None) -> Result | None:
    """The result an entry holds, or None if it cannot be read back."""
    try:
        # comms's own folder: see the module
        result: Result = _Unpickler(io.BytesIO(entry), path).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return None
    return result


class ContentCache:
    """Read results by input digest, kept in one file; every failure to use it is a miss."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._old: dict[str, bytes] | None = None
        #: The entries this reading used or made, pickled: what `save` keeps.
        self.used: dict[str, bytes] = {}
        self._added = False
        self._old_stamps: dict[Seen, tuple[Stamp, str]] | None = None
        #: The stamps of files read unchanged before this reading began: what `save` keeps.
        self.stamps: dict[Seen, tuple[Stamp, str]] = {}
        self._since: int | None = None
        self._context: tuple[Mapping[str, Any], str] | None = None
        #: The entry name each file read through the cache gave, by the file's path.
        self.sources: dict[str, str] = {}

    @property
    def file(self) -> Path:
        """The file that holds every entry (one file: creating thousands costs seconds)."""
        return self.folder / PACK

    def _text(self, context: Mapping[str, Any]) -> str:
        # A reading passes one context for every file: its text is made once (the context is
        # kept, so its id is not reused).
        if self._context is None or self._context[0] is not context:
            self._context = (context, _context_text(context))
        return self._context[1]

    def key(self, path: Path, raw: bytes, kind: str, context: Mapping[str, Any]) -> str:
        """The entry name for reading `raw` (the bytes of `path`) as `kind` in `context`."""
        digest = hashlib.sha256(_code_digest())
        for part in (str(path).encode(), kind.encode(), self._text(context).encode()):
            digest.update(part + b"\0")
        digest.update(raw)
        return digest.hexdigest()

    def _recorded(self) -> dict[Seen, tuple[Stamp, str]]:
        if self._old_stamps is None:
            try:
                code, loaded = pickle.loads((self.folder / STAMPS).read_bytes())
            except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
                code, loaded = None, {}
            ours = code == _code_digest() and isinstance(loaded, dict)
            self._old_stamps = loaded if ours else {}
            # The reading begins now: a file changed within SETTLE before it is not stamped.
            now = file_clock(self.folder / CLOCK)
            self._since = None if now is None else now - SETTLE
        return self._old_stamps

    def stamped(
        self, path: Path, kind: str, context: Mapping[str, Any]
    ) -> tuple[tuple[Seen, Stamp] | None, str | None]:
        """`path`'s stamp now (taken before its bytes are read; None if it cannot be) and the
        entry name a reading recorded with that same stamp, or None."""
        recorded = self._recorded()
        stamp = file_stamp(path)
        if stamp is None:
            return None, None
        seen = (str(path), kind, self._text(context))
        old = recorded.get(seen)
        return (seen, stamp), old[1] if old is not None and old[0] == stamp else None

    def note(self, stamped: tuple[Seen, Stamp] | None, key: str) -> None:
        """Record that the file `stamped` (`stamped`'s first value) read as `key`, if it had
        not changed within SETTLE before this reading began."""
        if stamped is None or self._since is None:
            return
        seen, stamp = stamped
        if stamp[3] < self._since and stamp[4] < self._since:
            self.stamps[seen] = (stamp, key)

    def _entries(self) -> dict[str, bytes]:
        if self._old is None:
            try:
                loaded = pickle.loads(self.file.read_bytes())  # comms's own folder: see the module
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                loaded = {}
            self._old = loaded if isinstance(loaded, dict) else {}
        return self._old

    def get(self, key: str, path: Path | None = None) -> Result | None:
        """The result stored under `key` (made with the same `path` given to `put`), or None."""
        raw = self._entries().get(key)
        if not isinstance(raw, bytes):
            return None
        result = _loaded(raw, path)
        if result is not None:
            self.used[key] = raw
        return result

    def put(self, key: str, result: Result, path: Path | None = None) -> None:
        """Keep `result` under `key` (written by `save`); `path`: the file it was read from."""
        entry = pickled(result, path)
        if entry is not None:  # else only read again next time
            self.used[key] = entry
            self._added = True

    def adopt(self, key: str, entry: bytes, path: Path | None = None) -> Result | None:
        """Keep `entry`, a result another process `pickled`, under `key`; the result it holds
        (None, and nothing kept, if it cannot be read back)."""
        result = _loaded(entry, path)
        if result is not None:
            self.used[key] = entry
            self._added = True
        return result

    def save(self) -> None:
        """Replace the file with the entries this reading used, if they differ from it: files
        edited or gone since drop out. A read-only or full disk only costs the next run time."""
        if self._added or len(self.used) != len(self._entries()):
            try:
                write_private(self.file, pickle.dumps(self.used, protocol=5))
            except (OSError, pickle.PicklingError):
                pass
        if self._old_stamps is None or self.stamps == self._old_stamps:
            return
        try:
            stamps = pickle.dumps((_code_digest(), self.stamps), protocol=5)
            write_private(self.folder / STAMPS, stamps)
        except (OSError, pickle.PicklingError):
            pass
