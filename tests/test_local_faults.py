"""Full disks and other local faults: one line naming the path and the space, exit 1, no
traceback unless --debug; an import is all or nothing; a full outbox is a local error."""

from __future__ import annotations

import errno
import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.errors import LocalError
from comms.core.local_faults import local_error, size
from comms.core.settings import Delivery
from comms.sending.campaign import prepare, send
from comms.sending.run import SendOptions

from .ledgerkit import Sink, build, make_store, run_cli
from .small_disk import fill, resize, small_disk

#: `(needs about 3.2 MB, 0 B free)`: the space a full disk lacked, as `df -H` writes it.
SPACE = r"\(needs about [\d.]+ [kMGT]?B, [\d.]+ [kMGT]?B free\)"


def test_sizes_read_like_df() -> None:
    assert [size(n) for n in (0, 999, 1000, 12_345, 3_200_000)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "12.3 kB",
        "3.2 MB",
    ]


def test_a_local_fault_names_the_file_and_the_reason(tmp_path: Path) -> None:
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "x.eml"))
    assert str(local_error(denied)) == f"cannot write {tmp_path / 'x.eml'}: Permission denied"
    full = OSError(errno.ENOSPC, "No space left on device")
    line = str(local_error(full, tmp_path, needed=2048))
    assert re.fullmatch(rf"cannot write {tmp_path}: No space left on device {SPACE}", line)


@pytest.mark.slow
def test_build_on_a_full_disk_says_so_in_one_line(site_copy: Path, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        code, out, err = run_cli(site_copy, "build", "--out", str(disk / "public"))
        assert code == 1
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert re.fullmatch(
            rf"error: cannot write {disk / 'public'}\S*: No space left on device {SPACE}",
            lines[0],
        )
        assert "Traceback" not in out + err
        # A first build appears whole or not at all: nothing half-written is left.
        assert sorted(p.name for p in disk.iterdir()) == []
        with pytest.raises(LocalError) as raised:  # --debug: the traceback, down to the write
            run_cli(site_copy, "--debug", "build", "--out", str(disk / "public"))
        assert isinstance(raised.value.__cause__, OSError)


@pytest.mark.slow
@pytest.mark.sqlite_only("the SQLite file lives on the small disk; a server has its own")
def test_an_import_onto_a_full_disk_commits_nothing_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    people = tmp_path / "people.csv"
    rows = "".join(f"leser{n}@example.org\n" for n in range(5000))
    people.write_text("email\n" + rows, encoding="utf-8")
    with small_disk(tmp_path / "disk", "1m") as disk:
        env = {"COMMS_DATABASE_URL": f"sqlite:///{disk / 'comms.db'}"}
        args = ("subscribers", "import", str(people), "--confirmed", "--consent-note", "Test")
        code, out, err = run_cli(tmp_path, *args, env=env)
        assert code == 1
        assert re.fullmatch(
            rf"error: cannot write the database {disk / 'comms.db'}: database or disk is full "
            rf"\([\d.]+ [kM]?B free\); nothing of {people} was imported \(an import is one "
            r"transaction\): free space, then run it again\n",
            err,
        ), err
        assert "Traceback" not in out + err
        engine = sa.create_engine(env["COMMS_DATABASE_URL"])
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM subscribers")).scalar_one() == 0
        engine.dispose()

        resize(disk, "8m")  # space freed: the same command imports everything
        code, _, err = run_cli(tmp_path, *args, env=env)
        assert code == 0, err
        assert "imported 5000 (active); 0 already known" in err


@pytest.mark.slow
@pytest.mark.database
@pytest.mark.usefixtures("without_approval")
def test_a_full_outbox_is_a_local_error_not_a_server_policy(
    site_copy: Path, tmp_path: Path
) -> None:
    people = site_copy / "people.csv"
    people.write_text("email\n" + "".join(f"leser{n}@example.org\n" for n in range(3)), "utf-8")
    assert run_cli(site_copy, "subscribers", "import", str(people),
                   "--confirmed", "--consent-note", "Test")[0] == 0  # fmt: skip
    with small_disk(tmp_path / "disk", "1m") as disk:
        fill(disk)
        outbox = f"file://{disk / 'outbox'}"
        code, out, err = run_cli(
            site_copy, "send", "2020-02-newsletter", "--now", "--yes", "--transport", outbox
        )
        assert code == 1
        assert "policy" not in err
        assert re.fullmatch(
            rf"error: campaign stopped: cannot write {disk / 'outbox'}/\S+\.eml: No space left "
            rf"on device {SPACE}; 3 deliveries stay queued; fix the cause and run `comms send "
            r"2020-02-newsletter` again\n",
            err,
        ), err
        (disk / "filler").unlink()  # space freed: the same command sends them
        code, out, err = run_cli(
            site_copy, "send", "2020-02-newsletter", "--now", "--yes", "--transport", outbox
        )
        assert code == 0, err
        assert len(list((disk / "outbox").rglob("*.eml"))) == 3


@pytest.mark.slow
@pytest.mark.sqlite_only("the SQLite file lives on the small disk; a server has its own")
def test_outcomes_of_sent_messages_survive_a_full_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database fills up mid-send: what went out is recorded once space is back, and
    nobody gets the issue twice (before, 2 of 5 sent messages were left unrecorded)."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        store = make_store(tmp_path, 20, database_url=f"sqlite:///{disk / 'comms.db'}")
        campaign, _ = prepare(store, "ausgabe-1", "h", [], [])
        seen: list[str] = []

        def fill_after_four(recipient: str) -> None:
            seen.append(recipient)
            if len(seen) == 5:  # the fifth goes out; its outcome meets a full disk
                filler = fill(disk)
                threading.Timer(1.5, filler.unlink).start()  # an operator frees space

        sink = Sink(before_send=fill_after_four)
        options = SendOptions.of(Delivery(retry_backoff_seconds=0, concurrency=2))
        try:
            report = send(store, campaign, build, sink.opener, options)
            assert report.counts == {"sent": 20}
        finally:
            store.close()
    assert set(sink.per_address().values()) == {1} and len(sink.delivered) == 20
    assert re.search(
        r"cannot record \d outcome\(s\) of messages already handed over: database or disk is "
        r"full; keeping them",
        caplog.text,
    )


@pytest.mark.database
def test_any_other_local_fault_is_one_line_too(tmp_path: Path) -> None:
    """A fault no command words itself still ends in one line naming the path (exit 1)."""
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    (tmp_path / "plain-file").write_text("not a folder", encoding="utf-8")
    target = tmp_path / "plain-file" / "people.csv"
    code, out, err = run_cli(tmp_path, "subscribers", "export", "--output", str(target))
    # The export makes its private folder first: the fault is met at the plain file.
    assert (code, out) == (1, "")
    assert err == f"error: {tmp_path / 'plain-file'}: File exists\n"
    with pytest.raises(OSError):
        run_cli(tmp_path, "--debug", "subscribers", "export", "--output", str(target))


@pytest.mark.slow
@pytest.mark.sqlite_only("`comms backup` copies the SQLite file; a server has pg_dump")
def test_a_backup_onto_a_full_disk_says_so_and_leaves_no_partial_copy(tmp_path: Path) -> None:
    store = make_store(tmp_path, count=3000)  # about 2 MB: more than the small disk holds
    store.close()
    with small_disk(tmp_path / "disk", "256k") as disk:
        target = disk / "copy.db"
        code, out, err = run_cli(tmp_path, "backup", str(target))
        assert code == 1
        assert re.fullmatch(
            rf"error: cannot write {target}: database or disk is full {SPACE}; no copy was "
            r"kept\n",
            err,
        ), err
        assert "Traceback" not in out + err
        assert list(disk.iterdir()) == [], "a partial copy is no backup"
        assert not re.search(r"\b0 B free", err), "the partial copy was still held open"
        resize(disk, "16m")  # space freed: the same command makes the copy
        code, out, err = run_cli(tmp_path, "backup", str(target))
        assert code == 0, err
        assert [path.name for path in disk.iterdir()] == ["copy.db"]


@pytest.mark.slow
@pytest.mark.sqlite_only("`comms restore` copies into the SQLite file; a server has pg_restore")
def test_a_restore_onto_a_full_disk_says_so_and_keeps_the_database(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    make_store(big, count=3000).close()
    run_cli(big, "backup", str(tmp_path / "big.db"))
    with small_disk(tmp_path / "disk", "1m") as disk:
        env = {"COMMS_DATABASE_URL": f"sqlite:///{disk / 'comms.db'}"}
        (tmp_path / "comms.toml").write_text("", encoding="utf-8")
        code, _, err = run_cli(tmp_path, "status", env=env)
        assert code == 0, err
        before = (disk / "comms.db").read_bytes()
        code, out, err = run_cli(tmp_path, "restore", str(tmp_path / "big.db"), env=env)
        assert code == 1
        assert re.fullmatch(
            rf"error: cannot write {disk / 'comms.db'}: database or disk is full {SPACE}; "
            r"the database is as it was\n",
            err,
        ), err
        assert "Traceback" not in out + err
        code, _, err = run_cli(tmp_path, "status", env=env)
        assert code == 0, err
        assert (disk / "comms.db").read_bytes()[:100] == before[:100]
