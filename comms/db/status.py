"""The states of subscribers, campaigns and deliveries, and the groups of them the code asks about;
the roles of desk accounts.

StrEnum members are the stored strings themselves: they compare, format and serialise as
those strings, so the database, the CHECK constraints and JSON output see no difference.
"""

from __future__ import annotations

from enum import StrEnum


class SubscriberStatus(StrEnum):
    """Where a person's subscription stands."""

    PENDING = "pending"  # signed up, not yet confirmed
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class CampaignStatus(StrEnum):
    """Where the sending of one issue stands."""

    SENDING = "sending"
    WAITING = "waiting"  # some deliveries wait for a retry
    PAUSED = "paused"  # stopped for a reason only a person can fix
    DONE = "done"


class DeliveryStatus(StrEnum):
    """Where one (issue, subscriber) delivery stands."""

    QUEUED = "queued"
    SENDING = "sending"  # claimed by a run
    SENT = "sent"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"  # the connection broke mid-send: maybe delivered, retried
    SKIPPED = "skipped"


#: Deliveries that are settled: a later run never touches them again (in report order).
FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)
#: Deliveries a claim may take: new ones and ones that wait for a retry.
CLAIMABLE = (DeliveryStatus.QUEUED, DeliveryStatus.AMBIGUOUS)
#: Deliveries not yet settled: claimable ones and ones a run holds.
WAITING = (*CLAIMABLE, DeliveryStatus.SENDING)
#: Campaigns whose due retries the scheduler sends.
RETRYING = (CampaignStatus.SENDING, CampaignStatus.WAITING)


#: The roles of desk accounts, each allowed what the one before it is (comms.db.desk_accounts).
DESK_ROLES = ("editor", "approver", "admin")
