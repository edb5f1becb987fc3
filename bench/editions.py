"""Benchmark: what editions cost. Per send, every enabled language is rendered once; per build,
every edition adds its archive, feeds and calendars under /<lang>/.

Run: .venv/bin/python bench/editions.py
Prints times and ratios against a baseline measured in the same run (the site's language only).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import median_seconds
from comms.content.site import read_site
from comms.core.config import Config, load_config
from comms.publish.build import collect
from comms.publish.producer import Build
from comms.publish.state import FileState
from comms.sending.issue_editions import issue_editions

ROOT = Path(__file__).resolve().parent.parent
ISSUE = "2019-07-newsletter"  # translated into English in the sample


def _config(folder: Path, editions: bool) -> Config:
    if editions:
        return load_config(folder / "comms.toml", environ={})
    # The same configuration without its [languages.*] tables: the site's language only.
    text = (folder / "comms.toml").read_text("utf-8").split("\n[languages.", 1)[0]
    (folder / "one.toml").write_text(text, "utf-8")
    return load_config(folder / "one.toml", environ={})


def main() -> None:
    """Measure a send's renders and a build, with and without the sample's four editions."""
    with tempfile.TemporaryDirectory(prefix="comms-bench-") as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "comms.toml", folder / "comms.toml")
        shutil.copytree(ROOT / "content", folder / "content")
        shutil.copytree(ROOT / "static", folder / "static")
        one, four = _config(folder, False), _config(folder, True)
        lone, _ = read_site(one)
        site, _ = read_site(four)
        base = median_seconds(
            lambda: issue_editions(one, lone, lone.issues[ISSUE], "bench"), 20, warm=True
        )
        every = median_seconds(
            lambda: issue_editions(four, site, site.issues[ISSUE], "bench"), 20, warm=True
        )
        print(f"Renders and message factories for one send of {ISSUE} (median of 20):")
        print(f"  site's language only       {base * 1000:8.1f} ms   1.00")
        label = f"{len(four.languages)} editions"
        print(f"  {label:<26} {every * 1000:8.1f} ms   {every / base:.2f}x")
        base = median_seconds(lambda: collect(Build(one, lone, FileState(one.root))), 3, warm=True)
        every = median_seconds(
            lambda: collect(Build(four, site, FileState(four.root))), 3, warm=True
        )
        files_one, files_four = (
            len(collect(Build(one, lone, FileState(one.root)))),
            len(collect(Build(four, site, FileState(four.root)))),
        )
        print("Sample build, rendered in memory (median of 3):")
        print(f"  site's language only       {base:8.2f} s    1.00  ({files_one} files)")
        ratio = f"{every / base:.2f}x"
        print(f"  {label:<26} {every:8.2f} s    {ratio} ({files_four} files)")


if __name__ == "__main__":
    main()
