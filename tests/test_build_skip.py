"""`comms build` skips an unchanged build by file stamps before it reads the site, and any
changed input (content, static file, configuration, template, catalog, publishing state, the
time) makes it read and build again: real files, the real command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

import comms.content.site
import comms.core.server_state
import comms.db.publishing
from comms.cli import main
from comms.core.config import load_config
from comms.db.publishing import DbPublishState
from comms.db.store import open_store
from comms.publish import build_record
from comms.publish.refresh import publish_now
from comms.publish.state import FileState
from comms.sending.campaign import prepare

from .conftest import copy_sample
from .databases import database_env, engine_for

#: Ready, its send_at after the sample's reference_date: public once its campaign started.
ISSUE = "2020-02-newsletter"
#: An hour back: older than comms.core.files.SETTLE, so the stamps of what a test wrote count.
AGE = 3600


class Builds:
    """Runs `comms build` on a site copy; tells whether it read the site (the full path)."""

    def __init__(
        self, site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ):
        self.site = site
        self.capsys = capsys
        self.reads = 0
        real = comms.content.site.load_valid_site

        def counting(*args: object, **kwargs: object) -> object:
            self.reads += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(comms.content.site, "load_valid_site", counting)

    def run(self) -> tuple[str, bool]:
        """`comms build`'s report line and whether it read the site."""
        before = self.reads
        main(["--config", str(self.site / "comms.toml"), "build"])
        out = self.capsys.readouterr().out
        return out.strip().splitlines()[-1], self.reads > before

    def age(self) -> None:
        """Move every input's mtime an hour back, as if edited long ago."""
        for folder in (self.site / "content", self.site / "static", self.site / "var"):
            for path in [folder, *folder.rglob("*")]:
                if path.is_file() and "cache" not in path.parts:
                    mtime = path.stat().st_mtime - AGE
                    os.utime(path, (mtime, mtime))
        toml = self.site / "comms.toml"
        os.utime(toml, (toml.stat().st_mtime - AGE,) * 2)

    def settle(self) -> str:
        """Age the inputs and build until a build is skipped without reading the site (the
        one after aging decides by the inputs digest and records the stamps)."""
        self.age()
        self.run()
        line, read = self.run()
        assert not read, "an unchanged build read the site"
        return line


@pytest.fixture
def builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Builds:
    """A sample site copy, built once."""
    made = Builds(copy_sample(tmp_path / "site"), monkeypatch, capsys)
    made.age()
    line, read = made.run()
    assert read and " 0 written" not in line
    return made


def _counts(line: str) -> tuple[int, int, int]:
    """(written, unchanged, removed) of `Built …: W written, U unchanged, R removed`."""
    numbers = [int(part.split()[0]) for part in line.split(": ", 1)[1].split(", ")]
    return numbers[0], numbers[1], numbers[2]


def _collects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time a build collects its files (reads past the record)."""
    import comms.publish.build

    collected: list[int] = []
    collect = comms.publish.build.collect

    def counting(*args: Any) -> Any:
        collected.append(1)
        return collect(*args)

    monkeypatch.setattr(comms.publish.build, "collect", counting)
    return collected


def _event(site: Path) -> Path:
    return next((site / "content" / "events").glob("2019-05-07-*.md"))


@pytest.mark.slow
def test_an_unchanged_build_is_skipped_with_the_same_report(builds: Builds) -> None:
    line, read = builds.run()  # right after the first build: its stamps already count
    assert not read
    written, unchanged, removed = _counts(line)
    assert (written, removed) == (0, 0) and unchanged > 200
    assert builds.run() == (line, False)


@pytest.mark.slow
def test_an_edited_added_or_removed_content_file_builds_again(builds: Builds) -> None:
    event = _event(builds.site)
    event.write_text(event.read_text("utf-8").replace("Laatzen", "Laatzen-Mitte"), "utf-8")
    line, read = builds.run()
    assert read and _counts(line)[0] > 0
    assert "Laatzen-Mitte" in (
        builds.site / "public" / "events" / event.stem / "index.html"
    ).read_text("utf-8")

    builds.settle()
    added = event.with_name("2019-05-08-zweiter-termin.md")
    added.write_text(event.read_text("utf-8").replace("2019-05-07", "2019-05-08"), "utf-8")
    line, read = builds.run()
    assert read and _counts(line)[0] > 0

    builds.settle()
    added.unlink()
    line, read = builds.run()
    assert read and _counts(line)[2] > 0, "the removed event's pages stay"

    builds.settle()
    # Only the mtime: the stamps tell, the inputs digest finds the same bytes and skips.
    os.utime(event, (event.stat().st_mtime - 10,) * 2)
    line, read = builds.run()
    assert read and _counts(line)[0] == 0


@pytest.mark.slow
def test_a_changed_static_file_or_configuration_builds_again(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    css = next((builds.site / "static").rglob("*.*"))
    css.write_bytes(css.read_bytes() + b"\n")
    line, read = builds.run()
    assert read and _counts(line)[0] > 0

    builds.settle()
    toml = builds.site / "comms.toml"
    toml.write_text(
        toml.read_text("utf-8").replace(
            "reference_date = 2020-01-15", "reference_date = 2020-01-16"
        ),
        "utf-8",
    )
    line, read = builds.run()
    assert read

    builds.settle()
    # The configuration as loaded counts, not only its file: an environment variable.
    monkeypatch.setenv("COMMS_SITE_NAME", "Anders benannt")
    line, read = builds.run()
    assert read and _counts(line)[0] > 0


@pytest.mark.slow
def test_a_warning_is_printed_again_by_a_skipped_build(
    builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = builds.site / "content" / "notizen.md"
    stray.write_text("Nur eine Notiz.\n", "utf-8")
    builds.age()
    config = ["--config", str(builds.site / "comms.toml"), "build"]
    main(config)
    full = capsys.readouterr().out
    assert builds.reads == 2
    main(config)
    assert builds.reads == 2, "not skipped"
    assert capsys.readouterr().out == full
    assert "notizen.md" in full


@pytest.mark.slow
def test_the_time_passing_the_records_until_builds_again(builds: Builds) -> None:
    toml = builds.site / "comms.toml"
    lines = toml.read_text("utf-8").splitlines(keepends=True)
    toml.write_text("".join(line for line in lines if "reference_date" not in line), "utf-8")
    # The sample's workshop of 2020-03-25 ends at 13:30 in Berlin: upcoming before, past after.
    with time_machine.travel(datetime(2020, 3, 25, 11, 0, tzinfo=UTC), tick=False):
        builds.settle()
    with time_machine.travel(datetime(2020, 3, 25, 12, 29, tzinfo=UTC), tick=False):
        assert builds.run()[1] is False
    with time_machine.travel(datetime(2020, 3, 25, 12, 31, tzinfo=UTC), tick=False):
        line, read = builds.run()
    assert read and _counts(line)[0] > 0


@pytest.mark.slow
@pytest.mark.database
def test_an_issue_marked_sent_builds_again(builds: Builds) -> None:
    """SQLite's files and a server's rows (comms.core.server_state) both show the send."""
    config = load_config(builds.site / "comms.toml", environ={})
    open_store(config).close()  # the publishing state moves into the database
    line, read = builds.run()
    assert read
    builds.settle()
    page = builds.site / "public" / "issues" / ISSUE / "index.html"
    assert not page.exists()
    store = open_store(config)
    try:
        prepare(store, ISSUE, "h", [], [])  # its campaign started: public now
    finally:
        store.close()
    line, read = builds.run()
    assert read and _counts(line)[0] > 0 and page.is_file()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://comms@127.0.0.1:1/comms",
        # psycopg.connect's own parameters, which the engine takes: no stamp, and no crash.
        "postgresql+psycopg://comms@127.0.0.1:1/comms?autocommit=true",
        "postgresql+psycopg://comms@127.0.0.1:1/comms?context=x",
    ],
)
def test_a_database_server_out_of_reach_is_not_stamped(site_copy: Path, url: str) -> None:
    config = load_config(site_copy / "comms.toml", environ={"COMMS_DATABASE_URL": url})
    stamps = build_record.take_stamps(config, config.output_dir)
    assert stamps is not None and stamps.state is None
    assert build_record.skipped(config, config.output_dir, stamps) is None


#: The feed record the changes below change: the first by uid.
FIRST = "WHERE uid = (SELECT min(uid) FROM feed_items)"
#: Changes another host's build could make to the feed history, one per column and a new row.
FEED_CHANGES = {
    "digest": f"UPDATE feed_items SET digest = md5(digest) {FIRST}",
    "sequence": f"UPDATE feed_items SET sequence = sequence + 1 {FIRST}",
    "seen": f"UPDATE feed_items SET seen = seen + interval '1 microsecond' {FIRST}",
    "changed": f"UPDATE feed_items SET changed = seen + interval '1 microsecond' {FIRST}",
    "new row": "INSERT INTO feed_items SELECT uid || '-neu', digest, sequence, seen, changed "
    f"FROM feed_items {FIRST}",
}


@pytest.mark.slow
@pytest.mark.postgresql_only("the feed history's rows on a server; SQLite's files show any write")
@pytest.mark.parametrize("change", FEED_CHANGES)
def test_another_hosts_change_of_the_feed_history_builds_again(builds: Builds, change: str) -> None:
    """The stamp covers every field of the feed records a build reads, not only the campaigns."""
    builds.settle()
    engine = engine_for(builds.site / "comms.toml")
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text(FEED_CHANGES[change])).rowcount == 1
    finally:
        engine.dispose()
    assert builds.run()[1], f"a change of the feed history's {change} was not seen"


@pytest.mark.slow
@pytest.mark.postgresql_only("a server's stamp is taken over two connections")
def test_a_server_stamp_the_build_reads_otherwise_keeps_no_stamps(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stamps taken without SQLAlchemy count only where the build's own connection gives the
    same: a URL read two ways (another database) must never skip a build."""
    monkeypatch.setattr(build_record, "server_stamp", lambda url: "server:elsewhere")
    builds.age()
    for _ in range(3):
        assert builds.run()[1], "a build was skipped on another database's stamp"
    monkeypatch.undo()
    builds.settle()


@pytest.mark.slow
@pytest.mark.postgresql_only("the build's own connection takes a server's stamp")
def test_a_stamp_the_builds_connection_cannot_take_costs_only_the_skip(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query that fails there (PostgreSQL before 11 has no sha256, a dropped connection)
    leaves no stamps: the build is written and reported, the next one reads again."""
    monkeypatch.setattr(comms.db.publishing, "STAMP_SQL", "SELECT no_such_function()")
    builds.age()
    index = builds.site / "public" / "index.html"
    index.unlink()
    for _ in range(2):
        line, read = builds.run()
        assert read and line.startswith("Built ")
    assert index.is_file()


@pytest.mark.slow
@pytest.mark.postgresql_only("counts the queries to a server")
def test_a_skip_asks_the_server_once_and_a_publish_without_stamps_never(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skip compares with the stamp it took before; the refresh job, the follower and a
    send (`publish_now` without stamps) keep none, so they need none."""
    builds.settle()
    asked: list[str] = []
    real = comms.core.server_state.server_stamp

    def counted(url: str) -> str | None:
        asked.append(url)
        return real(url)

    monkeypatch.setattr(build_record, "server_stamp", counted)
    real_own = DbPublishState.server_stamp

    def own(self: DbPublishState) -> str | None:
        asked.append("own connection")
        return real_own(self)

    monkeypatch.setattr(DbPublishState, "server_stamp", own)
    line, read = builds.run()
    assert not read and len(asked) == 1 and asked[0].startswith("postgresql")
    asked.clear()

    def away(url: str) -> None:
        asked.append(url)

    monkeypatch.setattr(build_record, "server_stamp", away)  # the server stopped answering
    line, read = builds.run()
    assert read and len(asked) == 1, "a skip asked a server that did not answer again"
    monkeypatch.setattr(build_record, "server_stamp", counted)
    asked.clear()
    config = load_config(builds.site / "comms.toml", environ={})
    (builds.site / "public" / "index.html").unlink()
    state = DbPublishState.open(config)
    try:
        published = publish_now(config, state)
    finally:
        state.close()
    assert "index.html" in published.write.written and asked == []


@pytest.mark.slow
@pytest.mark.database
def test_a_send_between_the_read_and_the_record_builds_again(
    builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A campaign that starts after the build read the sent issues and before it recorded
    its stamps: the state the stamps were taken from is not the one the build read, so the
    next build reads again and shows the issue."""
    config = load_config(builds.site / "comms.toml", environ={})
    open_store(config).close()  # the publishing state moves into the database
    builds.run()
    builds.settle()
    page = builds.site / "public" / "issues" / ISSUE / "index.html"
    real = DbPublishState.sent_issues

    def then_a_send(self: DbPublishState) -> frozenset[str]:
        found = real(self)
        store = open_store(config)
        try:
            prepare(store, ISSUE, "h", [], [])
        finally:
            store.close()
        return found

    monkeypatch.setattr(DbPublishState, "sent_issues", then_a_send)
    (builds.site / "public" / "index.html").unlink()  # so that this build reads the site
    line, read = builds.run()
    assert read and not page.exists()
    monkeypatch.setattr(DbPublishState, "sent_issues", real)
    line, read = builds.run()
    assert read, "skipped on stamps of a state the build did not read"
    assert page.is_file()


#: Prints every loaded module's name as the process exits (as tests/test_startup.py).
_PROBE = """
import atexit, sys
atexit.register(lambda: print("MODULES", *sorted(sys.modules), file=sys.__stderr__))
from comms.cli import main
main(sys.argv[1:])
"""


def _process_build(
    site: Path, package: Path, env: dict[str, str] | None = None
) -> tuple[str, set[str]]:
    """`comms build` in a process of its own with the comms package in `package` (and `env`):
    its report line and the modules it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "build"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(package), **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    modules = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return done.stdout.strip().splitlines()[-1], set(modules.split()[1:])


@pytest.mark.slow
def test_a_skipped_build_loads_no_build_and_a_changed_template_or_catalog_builds(
    tmp_path: Path,
) -> None:
    """In real processes, with comms's package copied so that its templates and catalogs can
    change: the skip loads neither the content models nor the build nor SQLAlchemy."""
    package = tmp_path / "package"
    shutil.copytree(
        Path(comms.__file__).parent, package / "comms", ignore=shutil.ignore_patterns("__pycache__")
    )
    site = copy_sample(tmp_path / "site")
    for path in [*package.rglob("*"), *site.rglob("*")]:
        if path.is_file():
            os.utime(path, (path.stat().st_mtime - AGE,) * 2)
    line, modules = _process_build(site, package)
    assert "comms.publish.build" in modules and _counts(line)[0] > 0
    line, modules = _process_build(site, package)
    assert _counts(line)[0] == 0
    loaded = {
        "comms.publish.build",
        "comms.content.models",
        "comms.content.site",
        "sqlalchemy",
        "jinja2",
    }
    assert not loaded & modules

    template = package / "comms" / "templates" / "web" / "base.html.j2"
    template.write_text(
        template.read_text("utf-8").replace("</body>", "<!-- geändert --></body>"), "utf-8"
    )
    line, modules = _process_build(site, package)
    assert "comms.publish.build" in modules and _counts(line)[0] > 0
    assert "<!-- geändert -->" in (site / "public" / "index.html").read_text("utf-8")

    catalog = package / "comms" / "templates" / "locale" / "en" / "LC_MESSAGES" / "messages.po"
    text = catalog.read_text("utf-8")
    catalog.write_text(
        text.replace('msgid "Events"\nmsgstr "Events"', 'msgid "Events"\nmsgstr "Happenings"'),
        "utf-8",
    )
    assert catalog.read_text("utf-8") != text
    line, modules = _process_build(site, package)
    assert "comms.publish.build" in modules and _counts(line)[0] > 0


@pytest.mark.slow
@pytest.mark.database
def test_builds_on_a_current_database_load_no_sqlalchemy(tmp_path: Path) -> None:
    """In real processes: the first build on a new server makes the schema (SQLAlchemy,
    Alembic; on SQLite `open_store` did), the second reads and writes the feed history over a
    connection of its own (no SQLAlchemy) and keeps the stamps, which its opening and closing
    left as they were; the third is skipped (on a server by one query through psycopg)."""
    site = copy_sample(tmp_path / "site")
    for path in site.rglob("*"):
        if path.is_file():
            os.utime(path, (path.stat().st_mtime - AGE,) * 2)
    env = database_env(site / "comms.toml")
    server = env.get("COMMS_DATABASE_URL", "").startswith("postgresql")
    if not server:
        open_store(load_config(site / "comms.toml", environ=env)).close()
    package = Path(comms.__file__).parent.parent
    line, modules = _process_build(site, package, env)
    assert ("sqlalchemy" in modules) == server and _counts(line)[0] > 0
    for path in (site / "var").glob("*.db*"):  # written just now: too recent for a skip
        os.utime(path, (path.stat().st_mtime - AGE,) * 2)
    (site / "public" / "index.html").unlink()  # so that this build reads the site
    line, modules = _process_build(site, package, env)
    assert "sqlalchemy" not in modules and "comms.publish.build" in modules
    assert _counts(line)[0] == 1
    line, modules = _process_build(site, package, env)
    assert _counts(line)[0] == 0
    assert not {"sqlalchemy", "comms.publish.build", "comms.content.site"} & modules
    assert ("psycopg" in modules) == server


def test_a_file_name_that_is_no_utf_8_is_stamped(site_copy: Path) -> None:
    config = load_config(site_copy / "comms.toml", environ={})
    before = build_record.take_stamps(config, config.output_dir)
    odd = os.fsencode(site_copy / "static") + b"/bild-\xff.txt"
    with open(odd, "wb") as handle:
        handle.write(b"x")
    after = build_record.take_stamps(config, config.output_dir)
    assert before is not None and after is not None and before.inputs != after.inputs


def test_a_linked_folder_in_the_content_leaves_no_stamps(site_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (site_copy / "content" / "events" / "mehr").symlink_to(elsewhere)
    config = load_config(site_copy / "comms.toml", environ={})
    assert build_record.take_stamps(config, config.output_dir) is None


def test_the_server_stamp_covers_every_column_the_build_reads() -> None:
    """`DbPublishState` reads every column of `feed_items` and the campaigns' slugs: a column
    added to either and left out of STAMP_SQL would let a change of it go unseen by a
    skipped build."""
    from comms.core.server_state import STAMP_SQL
    from comms.db.tables import feed_items

    words = set(re.findall(r"\w+", STAMP_SQL))
    read = f"{comms.db.publishing._STARTED} {comms.db.publishing._FEED_ROWS}"
    assert set(re.findall(r"\w+", read)) - {"SELECT", "FROM"} <= words
    assert {"campaigns", "slug", "feed_items"} <= words
    assert {column.name for column in feed_items.columns} <= words


@pytest.mark.database
def test_a_build_reads_the_feed_records_once_and_records_what_it_wrote(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build asks for the feed history four times (the inputs before and after, the
    history, `until`): one query on a database, which the build's own writes then join, so
    its record describes the state it left and the next build finds nothing changed."""
    config = load_config(site_copy / "comms.toml", environ={})
    open_store(config).close()  # a fresh database: the first build writes every record
    reads: list[int] = []
    real = DbPublishState.feed_rows

    def counted(self: DbPublishState) -> dict[str, tuple[object, ...]]:
        rows = real(self)
        reads.append(len(rows))
        return rows  # type: ignore[return-value]

    monkeypatch.setattr(DbPublishState, "feed_rows", counted)
    collected = _collects(monkeypatch)
    state = DbPublishState.open(config)
    try:
        first = publish_now(config, state)
        assert reads == [0] and collected == [1] and first.write.written
        second = publish_now(config, state)
    finally:
        state.close()
    assert reads[1] > 0 and len(reads) == 2
    assert collected == [1] and second.write.written == [], "the record missed its own writes"


@pytest.mark.database
def test_another_hosts_write_during_a_build_builds_again(
    site_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts see the same new items and record them, each with its own `seen`; the last
    write wins. A build whose files show its own records must not record the other host's
    as its inputs, or its pages would keep its own forever: the next build makes them again."""
    config = load_config(site_copy / "comms.toml", environ={})
    open_store(config).close()
    real = DbPublishState.save_feed_rows

    def and_the_other_host(self: DbPublishState, rows: dict[str, Any]) -> None:
        real(self, rows)
        first = min(rows)
        digest, sequence, seen, changed = rows[first]
        real(self, {first: (digest, sequence, seen - timedelta(seconds=1), changed)})

    collected = _collects(monkeypatch)
    monkeypatch.setattr(DbPublishState, "save_feed_rows", and_the_other_host)
    state = DbPublishState.open(config)
    try:
        publish_now(config, state)
        monkeypatch.setattr(DbPublishState, "save_feed_rows", real)
        again = publish_now(config, state)
        assert collected == [1, 1], "the other host's records taken for this build's"
        assert again.write.unchanged
        publish_now(config, state)
    finally:
        state.close()
    assert collected == [1, 1]


#: `FileState.save_feed_rows` with another output folder's build writing the same file.
_Save = Callable[[FileState, dict[str, Any]], None]


def _another_build_after(real: _Save, state: FileState, rows: dict[str, Any]) -> None:
    """It rewrites the file after this build wrote it, with its own observation of the same
    edit a second earlier (the feeds' `updated` differ)."""
    real(state, rows)
    second = timedelta(seconds=1)
    shifted = {uid: (d, n, seen, c and c - second) for uid, (d, n, seen, c) in rows.items()}
    real(FileState(state.feeds.parent.parent), shifted)


def _another_build_before(real: _Save, state: FileState, rows: dict[str, Any]) -> None:
    """It writes a record of its own (an item this build did not record) after this build
    read the file and before it saves: the bytes this build writes carry that record
    although its files were not made from it."""
    other = FileState(state.feeds.parent.parent)
    known = other.feed_rows()
    uid = min(set(known) - set(rows))
    digest, sequence, seen, changed = known[uid]
    real(other, {uid: (digest, sequence + 1, seen, seen + timedelta(days=1))})
    real(state, rows)


@pytest.mark.slow
@pytest.mark.parametrize("another", [_another_build_after, _another_build_before])
def test_a_state_file_another_folders_build_wrote_keeps_no_stamps(
    builds: Builds, monkeypatch: pytest.MonkeyPatch, another: Callable[..., None]
) -> None:
    """Without a database, var/feeds-state.json is shared by the builds of every output
    folder, which take turns only per folder (`comms build --out elsewhere`): a file another
    build wrote during this one is not the state this build's files show."""
    builds.settle()
    event = _event(builds.site)
    event.write_text(event.read_text("utf-8").replace("Laatzen", "Laatzen-Mitte"), "utf-8")
    builds.age()
    real = FileState.save_feed_rows
    monkeypatch.setattr(FileState, "save_feed_rows", lambda state, rows: another(real, state, rows))
    line, read = builds.run()
    assert read and _counts(line)[0] > 0
    monkeypatch.setattr(FileState, "save_feed_rows", real)
    line, read = builds.run()
    assert read and _counts(line)[0] > 0, "the other build's feed records were not shown"


def test_a_second_preview_build_finds_nothing_changed(
    site_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview publishes with a ScratchState, which forgets the feed records a build
    writes: its record must describe that (no records), or every rebuild reads everything."""
    from comms.publish.state import ScratchState

    config = load_config(site_copy / "comms.toml", environ={})
    collected = _collects(monkeypatch)
    for _ in range(2):
        publish_now(config, ScratchState(), out_dir=tmp_path / "preview")
    assert collected == [1]
