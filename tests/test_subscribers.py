"""Subscriber store and CLI: import with line numbers, export, GDPR show and erasure."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from comms.core.errors import ConfigError
from comms.db.driver import MIGRATIONS, head_revision
from comms.db.people import Consent, NewSubscriber, SubscriberError, normalise_address
from comms.db.store import open_store

from .databases import engine_for, every_row
from .ledgerkit import make_config, run_cli, schema_drift

pytestmark = pytest.mark.database


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    return tmp_path


CSV = (
    "email;name;topics;regions;language\n"
    "Anna@Example.ORG;Anna;sprache,arbeit;;de\n"
    "kaputt;X;;;\n"
    "b@example.org;;unbekannt;;\n"
    "anna@example.org;Doppelt;;;\n"
    '"c@example.org";"Zwei\nZeilen";;weser-ems;en\n'
    "d@example.org;;;;fr\n"
    "\n"
    "e@example.org;Eva;kultur;lueneburg;\n"
    "g@example.org;G;;;;zu viel\n"
)


def test_import_reports_bad_rows_by_line_and_keeps_the_good_ones(root: Path) -> None:
    (root / "list.csv").write_text(CSV, encoding="utf-8")
    code, out, err = run_cli(root, "subscribers", "import", str(root / "list.csv"), "--confirmed")
    assert code == 2
    assert "--confirmed needs --consent-note TEXT: how and when these people consented" in err
    code, out, err = run_cli(
        root,
        "subscribers",
        "import",
        str(root / "list.csv"),
        "--confirmed",
        "--consent-note",
        "Anmeldeliste Fachtag 2019, Unterschrift mit Einwilligungstext v2",
    )
    assert code == 1
    path = (root / "list.csv").as_posix()
    assert out.splitlines() == [
        f"{path}:3: invalid e-mail address 'kaputt': An email address must have an @-sign.",
        f"{path}:4: unknown topic 'unbekannt' (known: arbeit, bildung, engagement, frauen, "
        "gesundheit, kultur, sprache, teilhabe, wohnen)",
        f"{path}:5: anna@example.org repeats line 2; skipped",
        f"{path}:8: unknown language 'fr' (known: de, en)",
        f"{path}:11: 6 fields but the header has 5; row skipped",
    ]
    assert err == "imported 3 (active); 0 already known, 0 suppressed, 5 bad row(s) skipped\n"
    code, out, _ = run_cli(root, "subscribers", "show", "c@example.org", "--json")
    data = json.loads(out)
    assert data["status"] == "active"
    assert data["name"] == "Zwei Zeilen"  # line breaks in names become spaces
    assert data["language"] == "en" and data["regions"] == ["weser-ems"]
    assert data["consent"][0]["action"] == "import"
    assert data["consent"][0]["note"] == (
        "Anmeldeliste Fachtag 2019, Unterschrift mit Einwilligungstext v2"
    )
    assert data["consent"][0]["source"] == "import list.csv"


def test_a_second_import_leaves_known_people_alone(root: Path) -> None:
    (root / "a.csv").write_text("email,name\na@example.org,A\n", encoding="utf-8")
    assert run_cli(root, "subscribers", "import", str(root / "a.csv"))[0] == 0
    code, out, err = run_cli(root, "subscribers", "import", str(root / "a.csv"))
    assert code == 0
    assert out == f"{(root / 'a.csv').as_posix()}:2: already a subscriber; left unchanged\n"
    assert err == "imported 0 (pending); 1 already known, 0 suppressed, 0 bad row(s) skipped\n"


def test_an_import_at_a_whole_second_records_its_consent(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import finds its new rows again by their time: stored by a plain DB-API insert, that
    time must be the text SQLAlchemy compares it with (sqlite3's deprecated adapter, which the
    insert used, drops a zero fraction, so the rows were never found and had no consent)."""
    from comms.db import subscriber_import

    at = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(subscriber_import, "now_utc", lambda: at)
    store = open_store(make_config(root))
    try:
        people = [(2, NewSubscriber("a@example.org"))]
        event = Consent("import", "import a.csv", note="Liste v2")
        result, _ = store.import_subscribers(people, event, confirmed=True)
        assert result.added == 1
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, consent_id FROM subscribers")).all()
            consents = conn.execute(sa.text("SELECT action, at FROM consent")).all()
    finally:
        store.close()
    assert [tuple(row) for row in rows] == [("active", 1)]
    assert [row[0] for row in consents] == ["import"]


def test_header_without_email_is_an_error(root: Path) -> None:
    (root / "a.csv").write_text("mail,name\na@example.org,A\n", encoding="utf-8")
    code, _, err = run_cli(root, "subscribers", "import", str(root / "a.csv"))
    assert code == 1
    assert err == f"error: {(root / 'a.csv').as_posix()}:1: the header row has no 'email' column\n"


def test_nfc_and_nfd_forms_are_one_subscriber(root: Path) -> None:
    """docs/requirements.md T4: a decomposed ü must not make a second subscriber."""
    composed = unicodedata.normalize("NFC", "jürgen@example.org")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert normalise_address(decomposed) == normalise_address(" JÜRGEN@Example.org ") == composed
    # Confirmed: a confirmation mail cannot go to a non-ASCII address (it needs SMTPUTF8).
    consent = ("--confirmed", "--consent-note", "Formular")
    code, _, _ = run_cli(root, "subscribers", "add", composed, *consent)
    assert code == 0
    code, _, err = run_cli(root, "subscribers", "add", decomposed, *consent)
    assert code == 1
    assert err == f"error: {composed} is already a subscriber\n"


def test_add_says_what_pending_means(root: Path) -> None:
    code, out, err = run_cli(root, "subscribers", "add", "neu@example.org", "--topic", "sprache")
    assert code == 0, err
    assert out == (
        "added neu@example.org as pending: confirmation mail sent to neu@example.org "
        "(double opt-in); no newsletter until they confirm\n"
    )
    [mail] = (root / "var" / "outbox").glob("*.eml")
    assert b"/confirm/" in mail.read_bytes()
    code, out, _ = run_cli(root, "subscribers", "add", "x@example.org", "--topic", "kochen")
    assert code == 1


def test_show_prints_everything_about_one_person(root: Path) -> None:
    run_cli(
        root,
        "subscribers",
        "add",
        "a@example.org",
        "--name",
        "Ada",
        "--region",
        "weser-ems",
        "--confirmed",
        "--consent-note",
        "Telefonat am 3.2.",
    )
    code, out, _ = run_cli(root, "subscribers", "show", "A@example.org")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "email:        a@example.org"
    assert "name:         Ada" in lines
    assert "status:       active" in lines
    assert "regions:      weser-ems" in lines
    assert "suppressed:   no" in lines
    assert "consent ledger (1):" in lines
    assert lines[-2] == "deliveries (0):" or "deliveries (0):" in lines
    code, _, err = run_cli(root, "subscribers", "show", "nobody@example.org")
    assert code == 1 and err == "error: nothing stored about nobody@example.org\n"


def test_remove_erases_and_keeps_only_the_suppression_hash(root: Path) -> None:
    """docs/requirements.md L12: erase → profile rows gone, hash kept, re-import stays blocked."""
    run_cli(root, "subscribers", "add", "weg@example.org", "--confirmed", "--consent-note", "x")
    code, out, _ = run_cli(root, "subscribers", "remove", "weg@example.org")
    assert code == 0
    assert out == (
        "erased weg@example.org: profile, 1 consent record(s), personal link of 0 delivery "
        "record(s); kept: the suppression hash, so the address is never mailed or imported "
        "again\n"
    )
    engine = engine_for(root / "comms.toml")
    assert "weg@example.org" not in every_row(engine)
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM subscribers")).all() == [(0,)]
        assert db.execute(sa.text("SELECT count(*) FROM consent")).all() == [(0,)]
        assert db.execute(sa.text("SELECT reason FROM suppression")).all() == [("erased",)]
    engine.dispose()
    (root / "again.csv").write_text("email\nWEG@example.org\n", encoding="utf-8")
    code, out, err = run_cli(
        root, "subscribers", "import", str(root / "again.csv"), "--confirmed", "--consent-note", "y"
    )
    assert out.endswith(":2: address is on the suppression list; skipped\n")
    assert "0 (active); 0 already known, 1 suppressed" in err
    code, _, err = run_cli(root, "subscribers", "add", "weg@example.org")
    assert code == 1 and err == "error: weg@example.org is on the suppression list; not added\n"
    code, out, _ = run_cli(root, "subscribers", "show", "weg@example.org", "--json")
    assert json.loads(out) == {
        "email": "weg@example.org",
        "suppressed": "erased",
        "status": "erased",
        "consent": [],
        "deliveries": [],
    }


def test_export_csv_and_json(root: Path) -> None:
    (root / "a.csv").write_text(
        "email,name,topics\nb@example.org,Bea,sprache\na@example.org,Ali,\n", encoding="utf-8"
    )
    run_cli(
        root, "subscribers", "import", str(root / "a.csv"), "--confirmed", "--consent-note", "x"
    )
    code, out, _ = run_cli(root, "subscribers", "export")
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0]
        == "email,name,language,topics,regions,status,created_at,confirmed_at,unsubscribed_at"
    )
    assert lines[1].startswith("a@example.org,Ali,de,,,active,")
    assert lines[2].startswith("b@example.org,Bea,de,sprache,,active,")
    code, _, err = run_cli(
        root, "subscribers", "export", "--format", "json", "--output", str(root / "x.json")
    )
    assert err == f"exported 2 subscriber(s) to {root / 'x.json'}\n"
    data = json.loads((root / "x.json").read_text(encoding="utf-8"))
    assert [d["email"] for d in data] == ["a@example.org", "b@example.org"]
    assert data[1]["topics"] == "sprache"


def test_no_active_subscriber_without_a_consent_row(tmp_path: Path) -> None:
    """docs/requirements.md L1/L3: the database itself refuses an active row without consent."""
    store = open_store(make_config(tmp_path))
    person = store.add_pending(NewSubscriber("p@example.org"), Consent("request", "test"))
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE subscribers SET status = 'active' WHERE uid = :u"), {"u": person.uid}
        )
    confirmed = store.confirm(person.uid, Consent("confirm", "test", ip="127.0.0.1"))
    assert confirmed.status == "active"


def test_unsubscribe_suppresses_and_confirm_lifts_it(tmp_path: Path) -> None:
    store = open_store(make_config(tmp_path))
    person = store.add_confirmed(NewSubscriber("p@example.org"), Consent("import", "t", note="n"))
    store.unsubscribe(person.uid, Consent("unsubscribe", "one-click", channel="one-click"))
    assert store.suppression_reason("p@example.org") == "unsubscribed"
    again = store.confirm(person.uid, Consent("confirm", "web"))
    assert again.status == "active" and store.suppression_reason("p@example.org") is None
    with pytest.raises(SubscriberError):
        store.confirm("no-such-uid", Consent("confirm", "web"))


def test_generated_secret_persists_and_a_different_key_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first = open_store(config)
    assert first.generated_secret
    second = open_store(config)
    assert not second.generated_secret and second.secret == first.secret
    other = make_config(tmp_path)
    object.__setattr__(other, "secret_key", "another")
    with pytest.raises(ConfigError) as caught:
        open_store(other)
    assert caught.value.problems == [
        "environment COMMS_SECRET_KEY: differs from the key this database was set up with; "
        "restore the old key (tokens and the suppression list depend on it)"
    ]
    key_file = tmp_path / "var" / "secret.key"
    key_file.write_text("Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0VuQe3wRt5yU7i\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        open_store(make_config(tmp_path))
    assert caught.value.problems == [
        f"key file {key_file}: differs from the key this database was set up with; "
        "restore the old key (tokens and the suppression list depend on it)"
    ]


def _import_people(root: Path, numbers: range) -> None:
    """`comms subscribers import --confirmed` of a file with the people `numbers`."""
    people = "".join(f"p{n}@example.org,P {n}\n" for n in numbers)
    (root / "people.csv").write_text("email,name\n" + people, encoding="utf-8")
    code, _, err = run_cli(
        root, "subscribers", "import", str(root / "people.csv"), "--confirmed",
        "--consent-note", "x",
    )  # fmt: skip
    assert code == 0, err


def _statements_to_import(root: Path, first: int, rows: int) -> int:
    """SQL statements `comms subscribers import` runs for `rows` new people, beyond those of
    an import of an empty file (opening the store)."""
    counted: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.startswith("ANALYZE"):  # once per import, not per chunk
            counted.append(statement)

    def run(count_rows: int) -> int:
        counted.clear()
        sa.event.listen(sa.Engine, "before_cursor_execute", count)
        try:
            _import_people(root, range(first, first + count_rows))
        finally:
            sa.event.remove(sa.Engine, "before_cursor_execute", count)
        return len(counted)

    run(0)  # the first run sets the database up
    return run(rows) - run(0)


def test_import_work_grows_by_chunks_not_by_rows(root: Path) -> None:
    """The import's queries are per chunk of 2,000 rows, never per row, so 100,000 rows stay
    within the target of 10 s (bench/subscriber_import.py times it)."""
    one_row = _statements_to_import(root, 0, 1)
    assert 0 < one_row <= 10
    assert _statements_to_import(root, 1, 2000) == one_row  # one chunk
    assert _statements_to_import(root, 2001, 2001) == 2 * one_row  # two chunks


@pytest.mark.postgresql_only("PostgreSQL plans with statistics its autovacuum gathers late")
def test_an_import_leaves_statistics_a_send_can_plan_with(root: Path) -> None:
    """After an import the planner knows how many subscribers there are: the send right after
    it plans its snapshot for thousands of rows, not for the few of an empty table."""
    _import_people(root, range(3000))
    engine = engine_for(root / "comms.toml")
    try:
        with engine.connect() as conn:
            estimate = conn.execute(
                sa.text("SELECT relname, reltuples FROM pg_class WHERE relname IN "
                        "('subscribers', 'consent') ORDER BY relname")
            ).all()  # fmt: skip
    finally:
        engine.dispose()
    assert [tuple(row) for row in estimate] == [("consent", 3000), ("subscribers", 3000)]


def test_migrations_build_exactly_the_declared_schema_and_rerun_harmlessly(tmp_path: Path) -> None:
    store = open_store(make_config(tmp_path))
    store.add_confirmed(NewSubscriber("a@example.org"), Consent("import", "t", note="n"))
    assert schema_drift(store) == []
    again = open_store(make_config(tmp_path))  # upgrade to head again: nothing lost
    assert again.find("a@example.org") is not None
    with again.engine.connect() as conn:
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [(head,)]


def test_the_head_revision_is_alembics_and_a_current_database_opens_without_alembic(
    tmp_path: Path,
) -> None:
    """Opening a database whose schema is current reads its version and loads no Alembic (in
    a process of its own); a database one migration behind is still brought to the head."""
    assert head_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
    config = make_config(tmp_path)
    open_store(config).close()
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from comms.core.config import load_config\n"
        "from comms.db.store import open_store\n"
        f"url, toml = {config.database_url!r}, Path({str(tmp_path / 'comms.toml')!r})\n"
        "config = load_config(toml, {'database_url': url}, {})\n"
        "open_store(config).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
    store = open_store(config)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0011_desk_accounts'"))
    store.close()
    again = open_store(config)
    with again.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    again.close()
    assert version == head_revision()


@pytest.mark.sqlite_only("a file that is not a database")
def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    """What opening the store says, as opening the publishing state (`comms build`) does."""
    (tmp_path / "comms.toml").write_text("", encoding="utf-8")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "comms.db").write_bytes(b"not a database, " * 512)
    code, out, err = run_cli(tmp_path, "status")
    assert code == 1 and "Traceback" not in out + err
    assert err == "error: database_url: cannot use the database: file is not a database\n"


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_imported(root: Path) -> None:
    (root / "a.csv").write_bytes(b"email\nok@example.org\nb\xe4d@example.org\nfine@example.org\n")
    code, out, err = run_cli(
        root, "subscribers", "import", str(root / "a.csv"), "--confirmed", "--consent-note", "x"
    )
    assert code == 1
    assert out == f"{(root / 'a.csv').as_posix()}:3: not UTF-8 text (byte 2 of the line); skipped\n"
    assert err == "imported 2 (active); 0 already known, 0 suppressed, 1 bad row(s) skipped\n"
