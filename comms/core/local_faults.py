"""Local faults as one line: a full disk, a read-only file system or a missing permission,
with the path and, when space ran out, the space needed and the space free there."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from comms.core.errors import LocalError

#: No room: a full file system, or the user's quota used up.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def size(count: int) -> str:
    """Bytes as `df -H` shows them (SI units): `0 B`, `812 B`, `12.3 kB`, `3.2 MB`."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def free_space(path: Path) -> int | None:
    """Bytes an ordinary user may still write on the file system of `path` (of its nearest
    existing folder); None when that cannot be asked."""
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def space_note(path: Path, needed: int | None = None) -> str:
    """`needs about 3.2 MB, 12.3 kB free` (or only what is free) for the place of `path`."""
    free = free_space(path)
    parts = [f"needs about {size(needed)}" if needed else ""]
    parts.append(f"{size(free)} free" if free is not None else "free space unknown")
    return ", ".join(p for p in parts if p)


def local_error(
    exc: OSError, path: Path | None = None, needed: int | None = None, doing: str = "write"
) -> LocalError:
    """One line for a failed local operation: `cannot write PATH: REASON (SPACE)`.

    PATH is the file the system named (else `path`); a full disk adds the space `needed`
    (when the caller knows it) and the space free there. `doing=""`: `PATH: REASON`.
    """
    where = Path(exc.filename) if exc.filename else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    subject = " ".join(str(part) for part in (doing and f"cannot {doing}", where) if part)
    text = f"{subject}: {reason}" if subject else reason
    if exc.errno in NO_SPACE and where is not None:
        text += f" ({space_note(where, needed)})"
    return LocalError(text)
