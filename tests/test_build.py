"""Build writer tests: atomic, only changed files touched, stale files removed, others kept."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from comms.core.errors import RenderError
from comms.publish.build import MANIFEST, write_output
from comms.publish.producer import Files


def test_first_build_appears_whole(tmp_path: Path) -> None:
    out = tmp_path / "public"
    report = write_output(out, {"index.html": b"<p>a</p>", "events/x.ics": b"BEGIN"})
    assert report.written == ["events/x.ics", "index.html"]
    assert (out / "events" / "x.ics").read_bytes() == b"BEGIN"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public"]


def test_unchanged_files_keep_mtime_and_stale_files_go(tmp_path: Path) -> None:
    out = tmp_path / "public"
    write_output(out, {"a.html": b"1", "b.html": b"2", "old.html": b"3"})
    os.utime(out / "a.html", (1_000_000, 1_000_000))
    (out / "user-image.png").write_bytes(b"png")
    report = write_output(out, {"a.html": b"1", "b.html": b"changed"})
    assert report.unchanged == ["a.html"]
    assert report.written == ["b.html"]
    assert report.removed == ["old.html"]
    assert (out / "a.html").stat().st_mtime == 1_000_000
    assert (out / "user-image.png").exists()
    assert not list(out.glob(".tmp-*"))
    assert (out / MANIFEST).exists()


def test_refuses_paths_outside(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_output(tmp_path / "o", {"../evil": b"x"})


def _race(outs: list[Path], files: dict[str, bytes], start: Any, errors: Any) -> None:
    try:
        for out in outs:  # one round per folder, all writers starting each step at once
            start.wait()
            write_output(out, files)
            start.wait()
            write_output(out, {"index.html": b"<p>neu</p>"})  # all the others stale now
    except BaseException as exc:  # reported to the test: a child's exception is the assertion
        errors.put(repr(exc))
        start.abort()


@pytest.mark.slow
def test_a_deferred_body_is_made_once_when_first_read() -> None:
    made: list[str] = []

    def page() -> bytes:
        made.append("index.html")
        return b"<p>a</p>"

    files = Files({"index.html": page, "style.css": b"p {}"})
    assert list(files) == ["index.html", "style.css"] and made == []
    assert files["index.html"] == files["index.html"] == b"<p>a</p>"
    assert made == ["index.html"]


def test_a_body_that_fails_to_render_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "public"
    write_output(out, {"index.html": b"<p>a</p>"})

    def broken() -> bytes:
        raise RenderError("issue.md: MJML error: unclosed tag")

    files = Files({"a.html": b"new", "index.html": b"<p>b</p>", "z/email.html": broken})
    with pytest.raises(RenderError):
        write_output(out, files)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "index.html"]
    assert (out / "index.html").read_bytes() == b"<p>a</p>"
    with pytest.raises(RenderError):
        write_output(tmp_path / "fresh", files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public"]


@pytest.mark.slow
def test_writers_racing_for_one_folder_all_succeed(tmp_path: Path) -> None:
    """Two servers (or a server and a send) building one output folder at the same moment
    (from one database: the same files), as processes: the first rename wins, the others
    bring the folder to their files instead of failing; then, all at once again, the same
    smaller set of files: stale files one of them removes do not trip the others."""
    files = {f"issues/{n}/index.html": f"<p>{n}</p>".encode() for n in range(40)}
    context = multiprocessing.get_context("spawn")  # no fork of a threaded process
    # Three rounds, in the same four processes: a process start costs more than a round.
    outs = [tmp_path / f"public-{round_}" for round_ in range(3)]
    start, errors = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_race, args=(outs, files, start, errors)) for _ in "abcd"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    for out in outs:
        assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "index.html", "issues"]
        assert [p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST] == [
            out / "index.html"
        ]
        assert not list(tmp_path.glob(".public-*"))  # no staging folder left behind
