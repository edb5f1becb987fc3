"""Content files as an editor in the browser changes them: read with a digest of what was read,
written atomically and only when nobody changed the file since (never a silent overwrite)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comms.core.errors import CommsError

#: One save at a time in this process: the check of the digest and the write go together.
#: Other processes, on this host or on another one sharing the content folder, wait for a
#: POSIX lock on the file itself (docs/operations.md, "Several hosts").
_SAVING = threading.Lock()


class Conflict(CommsError):
    """The file changed since the editor loaded it."""


def conflict(path: Path) -> Conflict:
    """The Conflict of a file changed since the editor loaded it."""
    return Conflict(
        f"{path.name} was changed by someone else since you opened it; your text was not saved"
    )


@dataclass(frozen=True)
class Source:
    """A content file's text and the digest of its bytes."""

    text: str
    digest: str


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_source(path: Path) -> Source:
    """The file's text (UTF-8) and digest."""
    data = path.read_bytes()
    return Source(data.decode("utf-8"), _digest(data))


def save_source(path: Path, text: str, seen: str, then: Callable[[], object] | None = None) -> str:
    """Write `text` to `path` (line ends as typed in a browser made `\\n`) when its bytes are
    still those with digest `seen`; atomically (a reader sees the old or the new file); then
    call `then` (the commit) while the file is still held, so that no other save comes
    between the write and its commit. The new digest; Conflict when the file changed
    meanwhile."""
    data = text.replace("\r\n", "\n").encode("utf-8")
    with _SAVING, path.open("r+b") as held:
        # Whoever held the lock before may have replaced the file: the check reads the path
        # anew, so a second saver of the same version gets Conflict, never overwrites.
        fcntl.lockf(held, fcntl.LOCK_EX)
        if _digest(path.read_bytes()) != seen:
            raise conflict(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if then is not None:
            then()
    return _digest(data)
