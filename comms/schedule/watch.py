"""Noticing a changed content folder: a stamp of every file's name, size and mtime.

A poll, not file-system events: a stat walk of a content folder of a few thousand files takes
milliseconds, works the same on network file systems and under `git pull` (which replaces
files), and needs no extra thread per directory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def content_stamp(folder: Path) -> str:
    """A digest that changes whenever a file under `folder` is added, removed or changed."""
    entries: list[str] = []
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                info = os.stat(path)
            except OSError:  # removed while we walked: the next stamp sees it gone
                continue
            entries.append(f"{path}\0{info.st_size}\0{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode("utf-8", "surrogateescape")).hexdigest()
