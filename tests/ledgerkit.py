"""Test helpers for the send ledger: a store on a real SQLite file and scriptable transports."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from comms.cli import main
from comms.core.config import Config, load_config
from comms.core.errors import DeliveryError
from comms.db.people import Consent, NewSubscriber
from comms.db.store import Store, open_store
from comms.db.tables import metadata
from comms.mail.message import OutgoingMessage, Recipient

IMPORT = Consent("import", "test", note="Testdaten")


def make_config(root: Path, **overrides: object) -> Config:
    """A config whose database lives in `root`."""
    (root / "comms.toml").write_text("", encoding="utf-8")
    return load_config(root / "comms.toml", overrides=overrides, environ={})


def make_store(root: Path, count: int = 0, **overrides: object) -> Store:
    """A migrated store with `count` active subscribers user0@example.org …"""
    store = open_store(make_config(root, **overrides))
    people = ((n, NewSubscriber(f"user{n}@example.org")) for n in range(count))
    store.import_subscribers(people, IMPORT, confirmed=True)
    return store


def build(recipient: Recipient) -> OutgoingMessage:
    """A tiny message whose Message-ID and key depend only on the recipient (stable on retry)."""
    data = f"To: {recipient.email}\r\nSubject: Test\r\n\r\nHallo\r\n".encode()
    return OutgoingMessage(
        f"<{recipient.uid}@test>", "news@example.org", recipient.email, data, f"t/{recipient.uid}"
    )


@dataclass
class Sink:
    """What scripted transports delivered, shared by all of them."""

    delivered: list[tuple[str, str, bytes]] = field(default_factory=list)
    attempts: list[tuple[str, str]] = field(default_factory=list)
    #: address → exceptions to raise on the next attempts, in order
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    before_send: Callable[[str], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    opened: int = 0
    closed: int = 0

    def per_address(self) -> Counter[str]:
        """How often each address received a message."""
        return Counter(rcpt for rcpt, _, _ in self.delivered)

    def opener(self) -> ScriptedTransport:
        """A new transport (one per worker thread)."""
        with self.lock:
            self.opened += 1
        return ScriptedTransport(self)


class ScriptedTransport:
    """Implements the Transport protocol; raises what `Sink.failures` says."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def send(
        self,
        envelope_from: str,
        recipient: str,
        data: bytes,
        key: str,
        gate: Callable[[], None] | None = None,
        wire: bytes | None = None,
        then: Callable[[DeliveryError | None], None] | None = None,
    ) -> bool:
        """Record the message or raise the next scripted failure (before the gate, as a
        server refuses an address before the message is held); the result is known at once."""
        if self.sink.before_send is not None:
            self.sink.before_send(recipient)
        with self.sink.lock:
            self.sink.attempts.append((recipient, key))
            queue = self.sink.failures.get(recipient)
            error = queue.pop(0) if queue else None
        if error is not None:
            raise error
        if gate is not None:
            gate()
        with self.sink.lock:
            self.sink.delivered.append((recipient, key, data))
        return False

    def flush(self) -> None:
        """Nothing is owed."""

    def close(self) -> None:
        """Count closes."""
        with self.sink.lock:
            self.sink.closed += 1


def run_cli(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `comms --config ROOT/comms.toml ARGS` like the console script: (exit, out, err)."""
    runner = CliRunner()
    environ = {"COMMS_SECRET_KEY": "test-secret-Kq7Zr2Lp9Wx4Nb8Ys1Tf6Hd3Jm5Gc0Vu"} | (env or {})
    with runner.isolation(env=environ) as (out, err, _):
        try:
            main(["--config", str(root / "comms.toml"), *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue().decode(), err.getvalue().decode()


def schema_drift(store: Store) -> list[object]:
    """Differences between the migrated database and comms/db/tables.py (should be none)."""
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def status_checks(store: Store) -> dict[str, set[str]]:
    """The values each `ck_<table>_status` constraint of the database allows, by table."""
    inspector = sa.inspect(store.engine)
    found = {}
    for table in ("subscribers", "campaigns", "deliveries"):
        for check in inspector.get_check_constraints(table):
            if check["name"] == f"ck_{table}_status":
                found[table] = set(re.findall(r"'([^']*)'", check["sqltext"]))
    return found
