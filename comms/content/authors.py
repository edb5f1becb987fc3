"""Who last changed content files: the author of their last commit, where the content folder
is a git repository (the desk asks, so that nobody approves their own change); commits of the
desk's saves, and how an original changed since its translation was last committed."""

from __future__ import annotations

import fcntl
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from comms.core.errors import CommsError

#: Seconds a git command may take (a large history on a slow disk).
TIMEOUT = 30


@dataclass(frozen=True)
class Change:
    """The last commit that changed some files: its short hash and its author."""

    commit: str
    name: str
    email: str


class Uncommitted(CommsError):
    """Files in a git repository have changes nobody committed: their author is unknown."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(", ".join(paths))
        self.paths = paths


def _git(folder: Path, *args: str) -> str | None:
    """The output of a git command in `folder`; None without git, outside a repository, or
    when it fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def last_change(folder: Path, paths: Sequence[Path]) -> Change | None:
    """The last commit that changed any of `paths` (files under `folder`); None when `folder`
    is not in a git repository or no commit has them. Raises Uncommitted when one of them has
    changes that are not committed (or was never committed)."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    names = [str(path) for path in paths]
    status = _git(folder, "status", "--porcelain", "--untracked-files=all", "--", *names)
    if status is None:
        return None
    if status.strip():
        root = Path(top.strip())
        changed = [line[3:].strip().strip('"') for line in status.splitlines() if line.strip()]
        raise Uncommitted(sorted(str(root / name) for name in changed))
    found = _git(folder, "log", "-1", "--format=%h%x00%an%x00%ae", "--", *names)
    if not found or not found.strip():
        return None
    commit, name, email = found.strip().split("\0")
    return Change(commit, name, email)


_COMMITTING = threading.Lock()


def commit_file(folder: Path, path: Path, name: str, email: str, message: str) -> str | None:
    """Commit `path` alone (a file under `folder`) with `name <email>` as author and committer;
    its short hash, or None when `folder` is no git repository. A failing commit (nothing
    changed, a hook refused) is a CommsError."""
    git_dir = _git(folder, "rev-parse", "--absolute-git-dir")
    if git_dir is None:
        return None
    who = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
    # One commit at a time per repository, across threads and hosts sharing the folder:
    # git's own index.lock refuses a second one instead of waiting, and the hash read after
    # the commit must be this commit's.
    with _COMMITTING, (Path(git_dir.strip()) / "comms-commit.lock").open("a") as held:
        fcntl.lockf(held, fcntl.LOCK_EX)
        if _git(folder, "add", "--", str(path)) is None:
            raise CommsError(f"{path}: git add failed")
        if _git(folder, *who, "commit", "--quiet", "-m", message, "--", str(path)) is None:
            raise CommsError(f"{path}: git commit failed (nothing changed, or a hook refused it)")
        found = _git(folder, "rev-parse", "--short", "HEAD")
    return found.strip() if found else None


def changes_since(folder: Path, since: Path, path: Path) -> str | None:
    """How `path` changed since the last commit that changed `since` (both files under
    `folder`): the unified diff from that commit to the file as it is now; None when `folder`
    is not in a git repository, no commit has `since`, or nothing changed."""
    if _git(folder, "rev-parse", "--show-toplevel") is None:
        return None
    found = _git(folder, "log", "-1", "--format=%H", "--", str(since))
    if not found or not found.strip():
        return None
    diff = _git(
        folder, "diff", "--no-color", "--no-ext-diff", "--unified=1", found.strip(), "--",
        str(path),
    )  # fmt: skip
    if not diff:
        return None
    lines = diff.splitlines(keepends=True)
    # The header names files and blobs; the hunks are what a translator reads.
    start = next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines))
    return "".join(lines[start:]) or None
