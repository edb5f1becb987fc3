"""Private files: folders 0700 and files 0600 whatever the umask, and checks for exposed ones."""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from comms.core.config import Config
from comms.core.database_url import sqlite_file
from comms.core.transport_url import transport_folder

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: How long after a file changed its stamp (size, mtime, ctime) is trusted to show the next
#: change, in ns: a change in the same clock tick (or second, on file systems that keep whole
#: seconds) may keep the same size and mtime (git's "racily clean" files).
SETTLE = 2_000_000_000

#: A file's stamp: device, inode, size, mtime and ctime (ns). A change to the file changes
#: its ctime, which no one can set back (`touch -r` sets only the mtime).
Stamp = tuple[int, int, int, int, int]


def path_order(path: PurePath) -> tuple[str, ...]:
    """The sort key that orders paths as PurePath's own comparison does (by their parts), at a
    fraction of its cost (sorting thousands of paths compares each many times)."""
    return path.parts


def private_dir(path: Path) -> None:
    """Create `path` and its missing parents as 0700 folders (existing ones are left alone)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, PRIVATE_DIR)


def file_stamp(path: str | Path) -> Stamp | None:
    """`path`'s stamp (`Stamp`); None if it cannot be had."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def file_clock(path: Path) -> int | None:
    """ "Now" on the file system's clock (ns): the mtime `path` gets when touched (a private
    file, made if missing), which is what a change from now on gets as its mtime; None if it
    cannot be touched."""
    try:
        private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            os.utime(fd)
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
    except OSError:
        return None


def private_file(path: Path) -> None:
    """Create `path` empty as a 0600 file if it does not exist yet (in a 0700 folder if new)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.fchmod(fd, PRIVATE_FILE)
    os.close(fd)


@contextmanager
def private_writer(path: Path) -> Iterator[BinaryIO]:
    """A handle whose bytes replace `path` atomically, as a 0600 file, when the block ends
    (temp file + rename; nothing is replaced when the block raises)."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, as a 0600 file (temp file + rename)."""
    with private_writer(path) as handle:
        handle.write(data)


def write_checked(path: Path, layout: int, value: Any) -> bool:
    """Replace `path` with `value` in `marshal` under its SHA-256 and `layout`, as a private
    file (`read_checked` reads it back); whether it was written (a cache's file: a failure
    only costs a later miss)."""
    payload = marshal.dumps((layout, value))
    try:
        write_private(path, hashlib.sha256(payload).digest() + payload)
    except OSError:
        return False
    return True


def read_checked(path: Path, layout: int) -> Any:
    """What `write_checked` kept in `path` with `layout`; None when the file is missing,
    damaged (its SHA-256 does not match) or of another layout."""
    try:
        data = path.read_bytes()
        payload = data[32:]
        if hashlib.sha256(payload).digest() != data[:32]:
            return None
        found, value = marshal.loads(payload)
    except (OSError, ValueError, TypeError, EOFError):
        return None
    return value if found == layout else None


def make_private(path: Path) -> None:
    """Make a file another library created (with its own mode) 0600."""
    os.chmod(path, PRIVATE_FILE)


def exposed(path: Path) -> str | None:
    """'readable by others' (or the group) for a file or folder with such bits, else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IXOTH):
        return "readable by others" if mode & stat.S_IROTH else "open to others"
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        return "readable by its group"
    return None


def exposure_warnings(config: Config) -> list[str]:
    """A warning for each file or folder of personal data or secrets that others may read."""
    paths = [config.secret_key_file.parent, config.secret_key_file]
    database = sqlite_file(config.database_url)
    if database is not None:
        paths += [database.parent, database, *(Path(f"{database}{s}") for s in ("-wal", "-shm"))]
    outbox = transport_folder(config.transport_url, config.root)
    if outbox is not None:
        paths.append(outbox)
    found = []
    for path in dict.fromkeys(paths):
        problem = exposed(path)
        if problem is not None:
            mode = "0700" if path.is_dir() else "0600"
            found.append(
                f"warning: {path} is {problem}: it holds personal data or secrets; "
                f"chmod {mode} it (and chown it to the user comms runs as)"
            )
    return found
