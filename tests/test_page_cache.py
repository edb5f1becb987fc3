"""The page cache: a file is made again exactly when what it is made from changed; damaged
entries are made again, not served; builds in two processes at once leave a whole output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from feedgen.entry import FeedEntry

from comms.content.models import Item
from comms.core.config import Config, load_config
from comms.core.languages import Edition
from comms.publish import build, build_record, calendars, feed_fragments, feeds, templating
from comms.publish.feed_entry import Entry, EntryFacts
from comms.publish.feed_fragments import FRAGMENTS_DIR
from comms.publish.page_cache import INDEX, PageCache, build_digest
from comms.publish.producer import Files
from comms.publish.refresh import Publication, publish_now
from comms.publish.state import FileState

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every path a build makes (renders) instead of taking it from the cache."""
    made: list[str] = []
    real = build.make_all

    def recording(files: Files, paths: list[str], processes: int = 1) -> dict[str, bytes]:
        made.extend(paths)
        return real(files, paths, processes)

    monkeypatch.setattr(build, "make_all", recording)
    return made


def _rebuild(config: Config) -> Publication:
    """Build again, past the whole-build skip (its record is dropped): only the page cache
    decides what is made."""
    shutil.rmtree(config.root / build_record.RECORD_DIR, ignore_errors=True)
    return publish_now(config, FileState(config.root))


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_changed_item_makes_its_pages_lists_and_feeds_again_and_no_other(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    first = publish_now(config, FileState(config.root))
    made = _made(monkeypatch)
    out = config.output_dir
    other = out / "practices" / "hip-hop-workshop-oyten" / "index.html"
    before = os.stat(other)

    nothing = _rebuild(config)
    assert made == [] and nothing.write.written == []
    assert sorted(nothing.write.unchanged) == sorted(first.write.written)

    practice = site_copy / "content" / "practices" / "film-workshop-uelzen.md"
    text = practice.read_text("utf-8")
    assert "Uelzen" in text
    practice.write_text(text.replace("Uelzen", "Uelzen-Oldenstadt", 1), "utf-8")
    changed = _rebuild(config)
    assert "practices/film-workshop-uelzen/index.html" in made
    assert "practices/index.html" in made  # the list shows it
    assert "practices/feed.xml" in made and "feed.xml" in made  # so do the feeds
    assert "practices/film-workshop-uelzen/index.html" in changed.write.written
    # Nothing that does not show it: no other practice, no event, no calendar.
    assert not [p for p in made if "hip-hop-workshop-oyten" in p]
    assert not [p for p in made if p.startswith("events/") or p.endswith(".ics")]
    assert len(made) < len(first.write.written) // 5
    # A file left alone keeps its inode and mtime: rsync and nginx see no change.
    after = os.stat(other)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    # An item removed: its pages go (no issue features this practice).
    for translation in (site_copy / "content" / "practices").glob("tanz-workshop-*.md"):
        translation.unlink()
    removed = _rebuild(config)
    gone = "practices/tanz-workshop-landkreis-northeim/index.html"
    assert gone in removed.write.removed and not (out / gone).exists()


def test_feeds_the_cache_holds_word_no_entry_and_a_shown_item_changes_its_issue(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    worded: list[str] = []
    real = EntryFacts.categories

    def categories(facts: EntryFacts, item: Item) -> tuple[tuple[str, str, str], ...]:
        worded.append(f"{facts.edition.language}:{item.uid}")
        return real(facts, item)

    monkeypatch.setattr(EntryFacts, "categories", categories)
    made = _made(monkeypatch)
    # Every feed and calendar of every edition is still the one its key names: the entries
    # are keyed by their items and stamps, none is worded.
    assert _rebuild(config).write.written == [] and made == []
    assert worded == []

    # An event an issue shows: the issue's entry shows its new title, so the issue feeds are
    # made again; the practices' are not.
    event = site_copy / "content" / "events" / "2019-10-22-nemia-netzwerkkongress.md"
    text = event.read_text("utf-8")
    title = next(line for line in text.splitlines() if line.startswith("title:"))
    event.write_text(text.replace(title, 'title: "Netzwerkkongress (neu)"', 1), "utf-8")
    _rebuild(config)
    assert "issues/feed.xml" in made and "feed.xml" in made
    assert "practices/feed.xml" not in made
    assert "Netzwerkkongress (neu)" in (config.output_dir / "issues/feed.json").read_text()
    assert worded and len(worded) < 300


def _feeds(folder: Path) -> dict[str, bytes]:
    return {path: data for path, data in _tree(folder).items() if feeds.is_feed(path)}


def test_a_feed_made_again_serializes_only_its_changed_entries_and_is_whole(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    serialized: list[str] = []
    real = feeds._feed_entry

    def feed_entry(config: Config, entry: Entry) -> FeedEntry:
        serialized.append(entry.item.uid)
        return real(config, entry)

    monkeypatch.setattr(feeds, "_feed_entry", feed_entry)
    vevents: list[str] = []
    real_vevent = calendars._vevent

    def vevent(config: Config, edition: Edition, entry: Entry) -> bytes:
        vevents.append(entry.item.uid)
        return real_vevent(config, edition, entry)

    monkeypatch.setattr(calendars, "_vevent", vevent)
    made = _made(monkeypatch)
    out, kept = config.output_dir, site_copy / FRAGMENTS_DIR
    event = (
        site_copy / "content" / "events" / "2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen.md"
    )

    def edit(old: str, new: str) -> None:
        text = event.read_text("utf-8")
        assert old in text
        event.write_text(text.replace(old, new, 1), "utf-8")

    def whole() -> dict[str, bytes]:
        """The feeds of a build that starts from nothing but the feed history."""
        shutil.rmtree(out)
        shutil.rmtree(site_copy / "var" / "cache")
        _rebuild(config)
        return _feeds(out)

    # The event feeds and calendars list every upcoming event; only the changed one is
    # serialized again (once per edition: each words it in its language), the others kept.
    edit("FAQ", "Fragen")
    _rebuild(config)
    assert "events/feed.xml" in made and "en/events/atom.xml" in made
    assert "events.ics" in made
    changed = {"event/2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen"}
    assert set(serialized) == changed and set(vevents) == changed
    assert len(serialized) <= 4 and len(vevents) <= 4
    incremental = _feeds(out)
    assert incremental == whole()

    # A damaged or unreadable kept file is only a miss: its entries are serialized again.
    files = sorted(kept.iterdir())
    assert files
    for file in files[::2]:
        file.write_bytes(file.read_bytes()[:-1] + b"x")
    for file in files[1::2]:
        file.write_bytes(b"")
    edit("Fragen", "Fragen und Antworten")
    serialized.clear()
    _rebuild(config)
    assert len(serialized) > 4
    assert _feeds(out) == whole()


def test_the_fragments_files_of_feeds_that_are_gone_are_removed(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    kept = site_copy / FRAGMENTS_DIR
    before = {file.name for file in kept.iterdir()}
    # An edition dropped: its feeds and calendars are gone, and so are their fragments.
    toml = site_copy / "comms.toml"
    text = toml.read_text("utf-8")
    block = '[languages.ar]\nlabel = "العربية"\ndirection = "rtl"\n'
    assert block in text
    toml.write_text(text.replace(block, ""), "utf-8")
    config = load_config(toml, environ={})
    publish_now(config, FileState(config.root))
    after = {file.name for file in kept.iterdir() if ".new." not in file.name}
    assert after < before
    # What is left is what the feeds there are keep: the files a build from nothing makes.
    shutil.rmtree(config.output_dir)
    shutil.rmtree(site_copy / "var" / "cache")
    _rebuild(config)
    assert {file.name for file in kept.iterdir()} == after


def test_a_changed_template_makes_every_page_using_it_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    templates = tmp_path / "templates"
    shutil.copytree(templating.TEMPLATES, templates)
    page = templates / "web" / "practice.html.j2"
    source = page.read_text("utf-8")
    page.write_text(source.replace("{% block item %}", "{% block item %}<!-- changed -->"), "utf-8")
    monkeypatch.setattr(templating, "TEMPLATES", templates)
    monkeypatch.setattr(templating, "LOCALES", templates / "locale")
    templating.environment.cache_clear()
    try:
        made = _made(monkeypatch)
        changed = _rebuild(config)
    finally:
        templating.environment.cache_clear()
    practices = [p for p in made if p.startswith("practices/") and p.endswith("/index.html")]
    assert len(practices) > 3
    for path in practices:
        if path != "practices/index.html":
            assert path in changed.write.written
            assert b"<!-- changed -->" in (config.output_dir / path).read_bytes()


def test_a_damaged_entry_is_made_again_not_served(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    good = _tree(config.output_dir)
    cache = PageCache(config, config.output_dir)
    path = "practices/film-workshop-uelzen/index.html"
    kept = cache.folder / "files" / cache.index[path].key
    assert kept.read_bytes() == good[path]

    # The output file gone, its kept bytes damaged: they are not served, the page is made.
    (config.output_dir / path).unlink()
    with kept.open("r+b") as handle:
        handle.write(b"<!-- damaged -->")
    made = _made(monkeypatch)
    _rebuild(config)
    assert path in made
    assert _tree(config.output_dir) == good

    # Kept bytes intact: the page comes from the cache, not from its template.
    (config.output_dir / path).unlink()
    made.clear()
    _rebuild(config)
    assert path not in made
    assert _tree(config.output_dir) == good

    # A damaged index: every file is made again, and the output stays right.
    index = cache.folder / INDEX
    index.write_bytes(index.read_bytes()[:-40] + b"damaged")
    made.clear()
    _rebuild(config)
    assert path in made
    assert _tree(config.output_dir) == good
    assert PageCache(config, config.output_dir).index


def test_two_processes_building_at_once_leave_a_whole_and_right_output(
    site_copy: Path, tmp_path: Path
) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    reference = tmp_path / "reference"
    shutil.copytree(site_copy, reference)
    command = [sys.executable, "-m", "comms", "build"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, cwd=reference, check=True, capture_output=True, env=env)

    # Two builds at once, cold, then again after an item changed.
    for round_ in range(2):
        running = [
            subprocess.Popen(command, cwd=site_copy, env=env, stdout=subprocess.PIPE)
            for _ in range(2)
        ]
        assert all(p.wait(timeout=600) == 0 for p in running)
        built = _tree(site_copy / "public")
        assert built == _tree(reference / "public")
        listed = json.loads((site_copy / "public" / build.MANIFEST).read_text("utf-8"))
        assert sorted(listed) == sorted(p for p in built if p != build.MANIFEST)
        assert PageCache(config, config.output_dir).index
        if round_ == 0:
            for site in (site_copy, reference):
                event = next((site / "content" / "events").glob("2019-05-07-*.md"))
                event.write_text(event.read_text("utf-8").replace("Laatzen", "Laatzen-M"))
            subprocess.run(command, cwd=reference, check=True, capture_output=True, env=env)

    # The cache agrees with the output: a third build makes and writes nothing.
    shutil.rmtree(site_copy / build_record.RECORD_DIR)
    again = subprocess.run(command, cwd=site_copy, check=True, capture_output=True, env=env)
    assert b": 0 written," in again.stdout


#: Run in a fresh process: a test process has other threads (xdist's, servers of other tests),
#: and with other threads running the build makes its files here, never in forked workers.
WORKERS_SCRIPT = """
import json, os, sys
from pathlib import Path
from comms.content.site import read_site
from comms.core.config import load_config
from comms.publish import build
from comms.publish.producer import Build, Files
from comms.publish.state import FileState

root = Path(sys.argv[1])
build.PARALLEL_FROM = 1
config = load_config(root / "comms.toml", environ={})
site, _ = read_site(config)
for processes in (1, 2):
    files = build.collect(Build(config, site, FileState(config.root)))
    build.write_output(root / f"out-{processes}", files, processes=processes)
pids = Files({f"d{n % 4}/{n}.txt": (lambda: str(os.getpid()).encode()) for n in range(40)})
made = build.make_all(pids, list(pids), processes=2)
print(json.dumps({"here": os.getpid(), "made": sorted({int(v) for v in made.values()})}))
"""


def test_workers_make_the_same_bytes_as_one_process_in_other_processes(
    site_copy: Path,
) -> None:
    answer = subprocess.run(
        [sys.executable, "-c", WORKERS_SCRIPT, str(site_copy)],
        check=True,
        capture_output=True,
        text=True,
    )
    pids = json.loads(answer.stdout.splitlines()[-1])
    # The 40 files were made by forked workers, none here.
    assert pids["made"] and pids["here"] not in pids["made"]
    assert _tree(site_copy / "out-1") == _tree(site_copy / "out-2")


def test_an_edit_writes_only_the_new_feed_fragments_until_they_are_many(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each feed keeps its fragments in a file and the few new ones in a second file: a build
    after one edit does not write a whole feed's fragments again, and the feeds stay whole."""
    config = load_config(site_copy / "comms.toml", environ={})
    publish_now(config, FileState(config.root))
    kept = site_copy / FRAGMENTS_DIR
    before = {path.name: path.read_bytes() for path in kept.glob("*.bin")}
    assert before and not any(name.endswith(".new.bin") for name in before)
    event = (
        site_copy / "content" / "events" / "2020-03-25-faq-workshop-unternehmen-aktiv-ansprechen.md"
    )
    text = event.read_text("utf-8")
    event.write_text(text.replace("FAQ", "Fragen", 1), "utf-8")
    _rebuild(config)
    after = {path.name: path.read_bytes() for path in kept.glob("*.bin")}
    new = {name for name in after if name.endswith(".new.bin")}
    assert new and all(after[name] == data for name, data in before.items())
    incremental = _feeds(config.output_dir)
    # Every fragment kept at once: the first file of each feed is written anew.
    monkeypatch.setattr(feed_fragments, "DELTA_MIN", 0)
    monkeypatch.setattr(feed_fragments, "DELTA", 0)
    event.write_text(text.replace("FAQ", "Fragen und Antworten", 1), "utf-8")
    _rebuild(config)
    assert not any(path.name.endswith(".new.bin") for path in kept.glob("*.bin"))
    event.write_text(text.replace("FAQ", "Fragen", 1), "utf-8")
    _rebuild(config)
    assert _feeds(config.output_dir) == incremental
    shutil.rmtree(config.output_dir)
    shutil.rmtree(site_copy / "var" / "cache")
    _rebuild(config)
    assert _feeds(config.output_dir) == incremental


def test_a_build_on_another_database_keeps_the_pages_made_on_the_first(site_copy: Path) -> None:
    """Which database the state comes from makes no page (what a page shows of the state is
    its own input): a send that starts on a fresh database, as `bench/send.py` does each round,
    must not make every page of the archive again. Anything else in the settings does."""
    toml = site_copy / "comms.toml"

    def digest(**environ: str) -> str:
        return build_digest(load_config(toml, environ=environ))

    first = digest(COMMS_DATABASE_URL=f"sqlite:///{site_copy / 'one.db'}")
    assert digest(COMMS_DATABASE_URL=f"sqlite:///{site_copy / 'two.db'}") == first
    assert digest(COMMS_DATABASE_URL="postgresql://comms@db.example.org/comms") == first
    assert digest(COMMS_DELIVERY_BATCH_SIZE="7") != digest()


@pytest.mark.parametrize(
    ("environ", "overrides"),
    [
        ({}, {"transport": "smtp://127.0.0.1:2525"}),
        (
            {
                "COMMS_DATABASE_URL": "postgresql://comms@db.example.org/comms",
                "COMMS_SECRET_KEY": "another-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu",
            },
            {},
        ),
    ],
    ids=["transport", "database-and-key"],
)
def test_a_send_over_another_transport_makes_no_page_again(
    site_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    overrides: dict[str, str],
) -> None:
    """`comms send --transport URL` publishes the archive before its first message: where the
    mail goes shows on no page, so the pages the last build made are taken as they are (and
    the next build without the option does not make them again either). No more do the
    database and the secret key, which calendars' keys held with the whole configuration."""
    toml = site_copy / "comms.toml"
    config = load_config(toml, environ={})
    publish_now(config, FileState(config.root))
    made = _made(monkeypatch)
    other = load_config(toml, environ=environ, overrides=overrides)
    assert other.settings != config.settings or other.secret_key != config.secret_key
    assert _rebuild(other).write.written == [] and made == []
    assert _rebuild(config).write.written == [] and made == []


def test_a_build_is_cut_into_one_task_per_top_folder_largest_first() -> None:
    """The workers take whole folders (whose files share work made once per process), the
    largest first, so the last folders taken are the small ones."""
    paths = [
        "index.html",
        "feed.xml",
        "en/index.html",
        "en/events/a/index.html",
        "events/a/index.html",
        "events/a.ics",
        "events/b/index.html",
        "events/b.ics",
        "practices/x/index.html",
    ]
    assert build._tasks(paths) == [
        ["events/a.ics", "events/a/index.html", "events/b.ics", "events/b/index.html"],
        ["en/events/a/index.html", "en/index.html"],
        ["feed.xml", "index.html"],
        ["practices/x/index.html"],
    ]
