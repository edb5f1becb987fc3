"""What publishing knows beyond the content folder, behind one small interface: which issues
have gone out (the send ledger), feed item records and WebSub notifications still to send. The
database keeps it (comms.db.publishing.DbPublishState, which the CLI, the scheduler and a send pass
to `publish_now`); the files in var/ are the fallback where no database is at hand (nothing
has been sent from there), and what a database upgrade carries over."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Protocol

from comms.core.errors import CommsError
from comms.core.files import Stamp, file_stamp, write_private

STATE_FILE = Path("var") / "feeds-state.json"
PENDING_FILE = Path("var") / "websub-pending.json"

#: One item's record: (digest, sequence, first seen, last changed or None).
FeedRow = tuple[str, int, datetime, datetime | None]


def file_state_stamp(data: bytes) -> str:
    """The publishing state's stamp (`build_record`'s) for var/feeds-state.json holding
    `data` (empty: no file)."""
    return f"feeds-json:{hashlib.sha256(data).hexdigest()}"


class StateError(CommsError):
    """The feed state file cannot be read."""


class PublishState(Protocol):
    """Where the sent issues, the feed history and the pending WebSub notifications live."""

    #: Whether `feed_rows` gives back what `save_feed_rows` was given (not a ScratchState).
    keeps_feed_rows: bool

    def sent_issues(self) -> frozenset[str]:
        """Slugs of the issues whose mails have gone out (their campaign started): public now."""

    def feed_rows(self) -> dict[str, FeedRow]:
        """Every item's record, by item uid."""

    def save_feed_rows(self, rows: dict[str, FeedRow]) -> None:
        """Insert or replace these records (the others stay)."""

    def pending_pings(self) -> set[tuple[str, str]]:
        """(hub, feed URL) pairs whose notification failed."""

    def set_pending_pings(self, pairs: set[tuple[str, str]]) -> None:
        """Replace the pending notifications with `pairs`."""

    def server_stamp(self) -> str | None:
        """The stamp of what a build reads (comms.core.server_state) where a database server
        keeps it, as this state's own connection reads it; None elsewhere."""

    def written_stamp(self) -> str | None:
        """The stamp of the state file as this object last wrote it (`build_record`'s, of
        var/feeds-state.json); None where it wrote none or keeps no such file."""


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp, got {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without time zone: {value}")
    return parsed


def read_feed_file(path: Path) -> dict[str, FeedRow]:
    """The records in a `feeds-state.json`; none when it is missing, StateError when broken."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read the feed state ({exc}); fix or remove it") from None
    rows: dict[str, FeedRow] = {}
    try:
        for uid, entry in raw["items"].items():
            changed = entry.get("changed")
            rows[str(uid)] = (
                str(entry["digest"]),
                int(entry["sequence"]),
                _time(entry["seen"]),
                _time(changed) if changed is not None else None,
            )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise StateError(f"{path}: not a feed state file ({exc}); fix or remove it") from None
    return rows


def feed_file_text(rows: dict[str, FeedRow]) -> str:
    """The text of a `feeds-state.json` with `rows`, as `json.dumps(..., indent=1,
    ensure_ascii=False)` writes it, made row by row with the C string encoder: the indenting
    encoder is pure Python, and an edit rewrites every item's row."""
    text = encode_basestring
    lines = [
        f"  {text(uid)}: {{\n"
        f'   "digest": {text(digest)},\n'
        f'   "sequence": {int(sequence)!r},\n'
        f'   "seen": {text(seen.isoformat())},\n'
        f'   "changed": {text(changed.isoformat()) if changed else "null"}\n'
        "  }"
        for uid, (digest, sequence, seen, changed) in sorted(rows.items())
    ]
    items = "{\n" + ",\n".join(lines) + "\n }" if lines else "{}"
    return f'{{\n "version": 1,\n "items": {items}\n}}'


def read_pending_file(path: Path) -> set[tuple[str, str]]:
    """The pairs in a `websub-pending.json`; none when it is missing or unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {(str(hub), str(topic)) for hub, topic in raw}
    except (OSError, ValueError, TypeError):
        return set()


class FileState:
    """The state in `var/feeds-state.json` and `var/websub-pending.json` under `root`."""

    keeps_feed_rows = True

    def __init__(self, root: Path) -> None:
        self.feeds = root / STATE_FILE
        #: The stamp of the bytes this object last wrote to `feeds` (`written_stamp`).
        self._written: str | None = None
        self.pending = root / PENDING_FILE
        #: The records as last read or written, with the file's stamp then: a process that
        #: publishes again and again (serve, the scheduler) parses 2,600 rows only when the
        #: file changed, milliseconds each time.
        self._known: tuple[Stamp, dict[str, FeedRow]] | None = None

    def sent_issues(self) -> frozenset[str]:
        """None: only a database records sends."""
        return frozenset()

    def feed_rows(self) -> dict[str, FeedRow]:
        """Every item's record (StateError when the file is broken)."""
        stamp = file_stamp(self.feeds)
        if stamp is not None and self._known is not None and self._known[0] == stamp:
            return dict(self._known[1])
        rows = read_feed_file(self.feeds)
        self._known = None if stamp is None else (stamp, rows)
        return dict(rows)

    def save_feed_rows(self, rows: dict[str, FeedRow]) -> None:
        """Write the file with these records replaced."""
        # The file as this object last read or wrote it: else another process (a build of
        # another output folder) wrote records in between, which the bytes written now carry
        # although the caller did not make its files from them.
        before = file_stamp(self.feeds)
        own = before is None if self._known is None else self._known[0] == before
        merged = self.feed_rows() | rows
        data = (feed_file_text(merged) + "\n").encode("utf-8")
        write_private(self.feeds, data)
        self._written = file_state_stamp(data) if own else None
        stamp = file_stamp(self.feeds)
        self._known = None if stamp is None else (stamp, merged)

    def pending_pings(self) -> set[tuple[str, str]]:
        """The failed notifications of earlier refreshes."""
        return read_pending_file(self.pending)

    def set_pending_pings(self, pairs: set[tuple[str, str]]) -> None:
        """Write the pending notifications (remove the file when there are none)."""
        if not pairs:
            self.pending.unlink(missing_ok=True)
            return
        write_private(self.pending, json.dumps(sorted(map(list, pairs)), indent=1).encode())

    def server_stamp(self) -> str | None:
        """None: files, no server."""
        return None

    def written_stamp(self) -> str | None:
        """The stamp of the bytes it last wrote to var/feeds-state.json, if they held only
        its caller's records over the file as it had read it."""
        return self._written


class OneBuild:
    """`state` for the length of one build (`publish_now`): its feed records are read once
    and kept with the build's own writes, where the build asks for them four times (the
    inputs before and after, the history, the record's `until`), each a query of every row
    on a database server. So the record's inputs are the records this build made its files
    from: another host's write meanwhile differs from them, and the next build reads again.
    A state that forgets what it is given (ScratchState) is asked again after a write."""

    def __init__(self, state: PublishState) -> None:
        self.state = state
        self.keeps_feed_rows = state.keeps_feed_rows
        self._rows: dict[str, FeedRow] | None = None
        self._wrote = False

    def sent_issues(self) -> frozenset[str]:
        """As `state` says now."""
        return self.state.sent_issues()

    def feed_rows(self) -> dict[str, FeedRow]:
        """The records as first read, with this build's writes."""
        if self._rows is None:
            self._rows = self.state.feed_rows()
        return dict(self._rows)

    def save_feed_rows(self, rows: dict[str, FeedRow]) -> None:
        """Write them to `state`, and keep them (or ask again, where it forgets them)."""
        self.state.save_feed_rows(rows)
        self._wrote = True
        if self.keeps_feed_rows and self._rows is not None:
            self._rows = self._rows | rows
        else:
            self._rows = None

    def pending_pings(self) -> set[tuple[str, str]]:
        """As `state` says now."""
        return self.state.pending_pings()

    def set_pending_pings(self, pairs: set[tuple[str, str]]) -> None:
        """Replace them in `state`."""
        self.state.set_pending_pings(pairs)

    def server_stamp(self) -> str | None:
        """As `state` says now."""
        return self.state.server_stamp()

    def written_stamp(self) -> str | None:
        """As `state` says, if this build wrote (a state kept across builds may have written
        for an earlier one)."""
        return self.state.written_stamp() if self._wrote else None


class ScratchState:
    """No history and nothing kept: for builds that are only looked at (`comms check` asks
    which pages exist, the preview shows them), so that they never write state to `var/` (only
    the caches of `var/cache/`, safe to delete) nor mark items as seen. `sent`: the issues to
    show as sent (the preview shows every issue's page)."""

    keeps_feed_rows = False

    def __init__(self, sent: Iterable[str] = ()) -> None:
        self.sent = frozenset(sent)

    def sent_issues(self) -> frozenset[str]:
        """The issues given."""
        return self.sent

    def feed_rows(self) -> dict[str, FeedRow]:
        """No records: every item is new."""
        return {}

    def save_feed_rows(self, rows: dict[str, FeedRow]) -> None:
        """Forget them."""

    def pending_pings(self) -> set[tuple[str, str]]:
        """None."""
        return set()

    def set_pending_pings(self, pairs: set[tuple[str, str]]) -> None:
        """Forget them."""

    def server_stamp(self) -> str | None:
        """None: nothing is kept, so no build is skipped by it."""
        return None

    def written_stamp(self) -> str | None:
        """None: it writes nothing."""
        return None
