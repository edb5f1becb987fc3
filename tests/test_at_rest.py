"""Data at rest: private modes whatever the umask, the key outside the database, weak keys."""

from __future__ import annotations

import mailbox
import os
import re
import secrets
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
import sqlalchemy as sa

from comms.core.config import load_config
from comms.core.errors import ConfigError
from comms.core.files import write_private
from comms.core.keys import key_problem
from comms.db.people import Consent, NewSubscriber
from comms.db.store import open_store
from comms.db.tables import meta
from comms.mail.transports import FileTransport

from .databases import Databases
from .ledgerkit import make_config, run_cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The usual umask 022, under which new files are readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.database
def test_database_folder_and_key_file_are_private(tmp_path: Path, database: Databases) -> None:
    config = make_config(tmp_path)
    store = open_store(config)
    store.add_pending(NewSubscriber("p@example.org"), Consent("request", "test"))
    var = tmp_path / "var"
    assert _mode(var) == 0o700
    # On PostgreSQL the data lives in the server's files, which are the server's business.
    files = [] if database.postgresql else ["comms.db", "comms.db-wal", "comms.db-shm"]
    for name in [*files, "secret.key"]:
        assert _mode(var / name) == 0o600, name
    assert (var / "secret.key").read_text(encoding="utf-8").strip() == store.secret
    with store.engine.connect() as conn:
        keys = set(conn.execute(sa.select(meta.c.key)).scalars())
    assert "secret_key" not in keys  # only a fingerprint stays in the database
    store.engine.dispose()
    again = open_store(config)
    assert again.secret == store.secret and not again.generated_secret


@pytest.mark.database
def test_a_key_kept_in_the_database_by_an_older_version_moves_to_the_key_file(
    tmp_path: Path,
) -> None:
    store = open_store(make_config(tmp_path))
    secret = store.secret
    with store.engine.begin() as conn:
        conn.execute(sa.insert(meta).values(key="secret_key", value=secret))
    store.engine.dispose()
    (tmp_path / "var" / "secret.key").unlink()
    moved = open_store(make_config(tmp_path))
    assert moved.secret == secret and not moved.generated_secret
    assert _mode(tmp_path / "var" / "secret.key") == 0o600
    with moved.engine.connect() as conn:
        assert "secret_key" not in set(conn.execute(sa.select(meta.c.key)).scalars())


def test_outbox_files_and_folders_are_private(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "outbox")
    transport.send("a@example.org", "b@example.org", b"Subject: x\r\n\r\nlink\r\n", "issue/uid1")
    assert _mode(tmp_path / "outbox") == 0o700
    assert _mode(tmp_path / "outbox" / "issue") == 0o700
    assert _mode(tmp_path / "outbox" / "issue" / "uid1.eml") == 0o600
    write_private(tmp_path / "state" / "feeds-state.json", b"{}")
    assert _mode(tmp_path / "state" / "feeds-state.json") == 0o600


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "0123456789abcdef" * 3,
        "x" * 200,
        "Passwort123!",
        # Issue 21, lows: long enough, but a pattern (they passed before).
        "0123456789abcdef" * 4,
        "abcdefghijkl" * 4,
        "Kq7Zr2Lp9Wx4Nb8Y" * 3,
        "zyxwvutsrqponmlkjihgfedcba9876543210ZYXWVUTSRQPONMLKJIHGFEDCBA",
    ],
)
def test_weak_secret_keys_are_refused(tmp_path: Path, key: str) -> None:
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "comms.toml", environ={"COMMS_SECRET_KEY": key})
    assert caught.value.problems[0].startswith(
        "environment COMMS_SECRET_KEY: too weak: a secret key needs 32 random bytes"
    )


def test_strong_keys_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    strong = "Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0VuQe3wRt5yU7i"
    for key in (strong, f"web-test-0123456789abcdef-{strong}"):
        assert load_config(tmp_path / "comms.toml", environ={"COMMS_SECRET_KEY": key})
    # Keys as comms and the docs make them: the patterns they show by chance cost them little.
    for key in [secrets.token_hex(32) for _ in range(2000)]:
        assert key_problem(key) is None and key_problem(key.upper()) is None, key
    for key in [secrets.token_urlsafe(32) for _ in range(2000)]:
        assert key_problem(key) is None, key


@pytest.mark.sqlite_only("the warning is about the SQLite file's mode; a server keeps its own")
def test_check_warns_about_files_others_can_read(site_copy: Path) -> None:
    code, _, err = run_cli(site_copy, "subscribers", "export")
    assert code == 0 and "warning: " not in err
    (site_copy / "var" / "comms.db").chmod(0o644)
    code, _, err = run_cli(site_copy, "check")
    database = site_copy / "var" / "comms.db"
    assert (
        f"warning: {database} is readable by others: it holds personal data or secrets; "
        "chmod 0600 it (and chown it to the user comms runs as)"
    ) in err


def _written(root: Path, before: set[Path]) -> list[Path]:
    """Files and folders under `root` that were not there in `before`, but the public output
    (and the page cache's hard links to its files, which are those files)."""
    public = root / "public"
    shown = {p.stat().st_ino for p in public.rglob("*") if p.is_file()}
    return sorted(
        path
        for path in root.rglob("*")
        if path not in before
        and path != public
        and public not in path.parents
        and not (path.is_file() and path.stat().st_ino in shown)
    )


@pytest.mark.slow
@pytest.mark.sqlite_only("the modes of the files comms writes; a server keeps its own files")
@pytest.mark.usefixtures("without_approval")
def test_every_file_comms_writes_with_personal_data_is_private(site_copy: Path) -> None:
    """Issue 21.8: exports, outbox mails, backups, processed bounces — 0600 in 0700 folders,
    under the usual umask, whether the file is new or replaces one others could read."""
    (site_copy / "people.csv").write_text("email,name\nanna@example.org,Anna\n", "utf-8")
    (site_copy / "comms.toml").open("a").write('\n[bounces]\nmailbox = "maildir://mail"\n')
    box = mailbox.Maildir(site_copy / "mail", create=True)
    dsn = (Path(__file__).parent / "bounces" / "postfix-hard.eml").read_bytes()
    box.add(dsn.replace(b"kijitora@example.org", b"anna@example.org"))
    readable = site_copy / "readable.json"
    readable.write_text("[]", "utf-8")
    readable.chmod(0o644)
    before = set(site_copy.rglob("*"))

    args = ["subscribers", "import", str(site_copy / "people.csv"), "--confirmed"]
    assert run_cli(site_copy, *args, "--consent-note", "Liste")[0] == 0
    export = site_copy / "exports" / "people.csv"
    assert run_cli(site_copy, "subscribers", "export", "--output", str(export))[0] == 0
    args = ["subscribers", "export", "--format", "json", "--output", str(readable)]
    assert run_cli(site_copy, *args)[0] == 0
    assert run_cli(site_copy, "send", "2019-11-newsletter")[0] == 0
    assert run_cli(site_copy, "bounces", "fetch")[0] == 0
    assert run_cli(site_copy, "backup", str(site_copy / "backups" / "comms.db"))[0] == 0

    assert "anna@example.org,Anna" in export.read_text("utf-8")
    assert '"email": "anna@example.org"' in readable.read_text("utf-8")
    written = _written(site_copy, before)
    expected = [export, site_copy / "backups" / "comms.db", site_copy / "var" / "outbox"]
    assert set(expected) <= set(written) and len(box.get_folder("Processed")) == 1
    marker = site_copy / "mail" / ".Processed" / "maildirfolder"  # Maildir++'s, always empty
    assert marker.read_bytes() == b""
    modes = {str(p.relative_to(site_copy)): _mode(p) for p in [*written, readable] if p != marker}
    private = {name: 0o700 if (site_copy / name).is_dir() else 0o600 for name in modes}
    assert modes == private


def _holds(path: Path, *texts: str) -> list[str]:
    """Which of `texts` the bytes of `path` (and its write-ahead log) contain."""
    data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    return [text for text in texts if text.encode() in data]


def _outbox_holding(outbox: Path, text: str) -> list[str]:
    return sorted(
        str(p.relative_to(outbox)) for p in outbox.rglob("*.eml") if text.encode() in p.read_bytes()
    )


@pytest.mark.slow
@pytest.mark.sqlite_only("secure_delete and the write-ahead log are SQLite's")
@pytest.mark.usefixtures("without_approval")
def test_an_erased_person_leaves_no_trace_in_the_database_file_or_the_outbox(
    site_copy: Path,
) -> None:
    """Issue 21, lows: erased rows lingered in SQLite's free pages, and the person's mails
    in a file outbox (their address, live links) stayed."""
    people = "email,name\nanna@example.org,Anna Erasmus\nbernd@example.org,Bernd Bleibt\n"
    (site_copy / "people.csv").write_text(people, "utf-8")
    args = ["subscribers", "import", str(site_copy / "people.csv"), "--confirmed"]
    assert run_cli(site_copy, *args, "--consent-note", "Liste")[0] == 0
    assert run_cli(site_copy, "send", "2019-11-newsletter")[0] == 0
    assert run_cli(site_copy, "subscribers", "add", "carla@example.org")[0] == 0  # pending
    outbox, database = site_copy / "var" / "outbox", site_copy / "var" / "comms.db"
    assert len(_outbox_holding(outbox, "anna@example.org")) == 1
    assert len(_outbox_holding(outbox, "carla@example.org")) == 1  # the confirmation mail

    code, out, _ = run_cli(site_copy, "subscribers", "remove", "anna@example.org")
    assert code == 0 and "1 outbox file(s)" in out
    assert run_cli(site_copy, "subscribers", "remove", "carla@example.org")[0] == 0
    for address in ("anna@example.org", "carla@example.org"):
        assert _outbox_holding(outbox, address) == []
    assert len(_outbox_holding(outbox, "bernd@example.org")) == 1
    gone = ["anna@example.org", "Anna Erasmus", "carla@example.org"]
    assert _holds(database, *gone, "bernd@example.org") == ["bernd@example.org"]


@pytest.mark.sqlite_only("secure_delete and the write-ahead log are SQLite's")
def test_erasure_through_the_mailed_link_removes_the_outbox_files_too(tmp_path: Path) -> None:
    from comms.audience.mailer import Mailer
    from comms.audience.subscriptions import Subscriptions
    from comms.web.app import create_app

    from .webkit import CONFIRM_RE, CSRF_RE, DATA_RE, make_config

    outbox = tmp_path / "outbox"
    config = make_config(tmp_path, f"file://{outbox}")
    store = open_store(config)
    mailer = Mailer(config, settle=0.01)
    subs = Subscriptions(config, store, mailer)
    client = create_app(tmp_path / "public", config, subs).test_client()

    def mailed(pattern: re.Pattern[str]) -> str:
        mailer.join()
        newest = max(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        message = BytesParser(policy=default).parsebytes(newest.read_bytes())
        assert isinstance(message, EmailMessage)
        text = message.get_body(("plain",))
        assert text is not None
        found = pattern.search(text.get_content())
        assert found is not None
        return found.group(1)

    def csrf(path: str) -> str:
        found = CSRF_RE.search(client.get(path).get_data(as_text=True))
        assert found is not None
        return found.group(1)

    try:
        client.post(
            "/subscribe", data={"email": "dora@example.org", "csrf_token": csrf("/subscribe")}
        )
        assert client.post(mailed(CONFIRM_RE)).status_code == 200
        person = store.find("dora@example.org")
        assert person is not None
        FileTransport(outbox).send(
            "n@example.org",
            person.email,
            b"To: dora@example.org\r\n\r\nx",
            f"2020-02-newsletter/{person.uid}",
        )
        prefs = f"/preferences/{subs.preferences_token(person)}"
        client.post(prefs + "/delete", data={"csrf_token": csrf(prefs), "really": "yes"})
        assert client.post(mailed(DATA_RE)).status_code == 200
        assert store.find("dora@example.org") is None
        assert _outbox_holding(outbox, "dora@example.org") == []
        assert _holds(tmp_path / "comms.db", "dora@example.org") == []
    finally:
        mailer.close()
        store.close()
