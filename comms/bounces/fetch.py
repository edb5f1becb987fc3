"""`comms bounces fetch`: read the bounce mailbox, act on each report, move it out of the way."""

from __future__ import annotations

import imaplib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from comms.bounces.mailbox import MailboxError, open_mailbox, parse_mailbox_url
from comms.bounces.parse import read_report
from comms.bounces.policy import Outcome, handle_report
from comms.core.config import Config
from comms.db.store import Store

log = logging.getLogger("comms.bounces")


@dataclass
class FetchSummary:
    """What one fetch did: messages read, outcomes by kind, messages left for the next run."""

    mailbox: str
    read: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0

    def line(self) -> str:
        """One line for the terminal and the scheduler's log."""
        parts = [f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items())]
        if self.unreadable:
            parts.append(f"{self.unreadable} left unread (see the log)")
        detail = f": {', '.join(parts)}" if parts else ""
        return f"{self.mailbox}: {self.read} message(s) read{detail}"


def fetch(config: Config, store: Store, url: str | None = None) -> FetchSummary:
    """Read every waiting message of the mailbox (`url` or `bounces.mailbox`).

    Each message is handled, then moved to the processed folder; one that cannot be parsed
    stays for a later run. MailboxError when the mailbox cannot be opened or read.
    """
    settings = config.settings.bounces
    text = url or settings.mailbox
    if not text:
        raise MailboxError("no bounce mailbox: set bounces.mailbox or pass --mailbox")
    where = parse_mailbox_url(text, config.root)
    ca_file = str(config.root / Path(settings.ca_file).expanduser()) if settings.ca_file else None
    summary = FetchSummary(str(where))
    box = open_mailbox(where, settings.password, settings.processed_folder, ca_file)
    try:
        for item in box.messages():
            try:
                report = read_report(item.data)
            except Exception:  # a message the parsers choke on must not stop the others
                log.exception("%s: message %s could not be parsed; left in place", where, item.key)
                summary.unreadable += 1
                continue
            outcome = handle_report(config, store, report, item.data)
            box.done(item.key)
            summary.read += 1
            summary.outcomes[_label(outcome, report.kind.value)] += 1
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"mailbox {where}: {exc}") from None
    finally:
        box.close()
    return summary


def _label(outcome: Outcome, kind: str) -> str:
    return kind if outcome is Outcome.IGNORED else str(outcome)
