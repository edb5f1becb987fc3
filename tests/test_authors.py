"""Commits the desk makes (comms.content.authors.commit_file) in a real git repository."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from comms.content.authors import commit_file


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout


def test_saves_of_different_files_at_once_commit_one_by_one_under_their_authors(
    tmp_path: Path,
) -> None:
    _git(tmp_path, "init", "--quiet")
    files = [tmp_path / f"item-{n}.md" for n in range(8)]
    for n, path in enumerate(files):
        path.write_text(f"Text {n}\n", encoding="utf-8")

    def commit(n: int) -> str | None:
        name = f"Person {n}"
        return commit_file(tmp_path, files[n], name, f"p{n}@example.org", f"Edit item {n}")

    # git refuses a second commit while one runs (index.lock): none may fail or mix.
    with ThreadPoolExecutor(8) as pool:
        hashes = list(pool.map(commit, range(8)))
    assert len(set(hashes)) == 8 and None not in hashes
    for n, path in enumerate(files):
        log = _git(tmp_path, "log", "--format=%an|%s", "--", path.name).splitlines()
        assert log == [f"Person {n}|Edit item {n}"]
        # The hash returned is the commit of this file.
        assert _git(tmp_path, "log", "-1", "--format=%h", "--", path.name).strip() == hashes[n]
