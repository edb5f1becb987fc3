"""The database tables (SQLAlchemy Core); migrations in comms/db/migrations/ create them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from comms.db.status import DESK_ROLES, CampaignStatus, DeliveryStatus, SubscriberStatus

CONSENT_ACTIONS = (
    "request",
    "confirm",
    "import",
    "unsubscribe",
    "bounce",
    "complaint",
    "erase-request",
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: Iterable[str]) -> str:
    # str(): an enum member's repr is not its SQL literal.
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("suppression_key", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200)),
    sa.Column("language", sa.String(8), nullable=False),
    # Space-padded slug lists (" sprache arbeit ") so SQL can match one slug with LIKE.
    sa.Column("topics", sa.Text, nullable=False, server_default=""),
    sa.Column("regions", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    # The consent row that makes an active subscription lawful (docs/requirements.md L1/L3).
    sa.Column(
        "consent_id",
        sa.Integer,
        sa.ForeignKey("consent.id", name="fk_subscribers_consent", use_alter=True),
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("unsubscribed_at", UTCDateTime),
    # Raised by "log out all links": every revocable link made before stops working.
    sa.Column("link_version", sa.Integer, nullable=False, server_default="0"),
    # Set when an ended subscription was reduced to the proof of consent (retention).
    sa.Column("reduced_at", UTCDateTime),
    sa.CheckConstraint(_in("status", SubscriberStatus), name="ck_subscribers_status"),
    sa.CheckConstraint(
        f"status <> '{SubscriberStatus.ACTIVE}' OR consent_id IS NOT NULL",
        name="ck_subscribers_active_consent",
    ),
    # `/metrics` counts people by status at every scrape.
    sa.Index("ix_subscribers_status", "status"),
)

consent = sa.Table(
    "consent",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Column("user_agent", sa.Text),
    sa.Column("consent_version", sa.String(64)),
    sa.Column("channel", sa.String(32)),
    sa.Column("note", sa.Text),
    sa.CheckConstraint(_in("action", CONSENT_ACTIONS), name="ck_consent_action"),
    # `/metrics` counts the last day's sign-ups and confirmations at every scrape.
    sa.Index("ix_consent_action", "action", "at"),
)

suppression = sa.Table(
    "suppression",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

#: What a mailed single-use link may do.
LINK_PURPOSES = ("export", "erase")

# Export and erasure links mailed on request: one row each, used at most once.
link_requests = sa.Table(
    "link_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("purpose", sa.String(16), nullable=False),
    # A hash of the link's nonce: who reads the database cannot use a link that is still open.
    sa.Column("nonce_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.CheckConstraint(_in("purpose", LINK_PURPOSES), name="ck_link_requests_purpose"),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(200), nullable=False, unique=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("recipients", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("status", CampaignStatus), name="ck_campaigns_status"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "campaign_id",
        sa.Integer,
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # SET NULL: erasure keeps the anonymous count, not the person (docs/requirements.md L12).
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("claimed_by", sa.String(120)),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("message_id", sa.String(255)),
    # The language of the edition this person gets, decided when the campaign started.
    sa.Column("edition", sa.String(16)),
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime),
    sa.UniqueConstraint("campaign_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
    sa.CheckConstraint(_in("status", DeliveryStatus), name="ck_deliveries_status"),
    # In id order: a claim reads the first due rows of each status off it (no sort).
    sa.Index("ix_deliveries_claim", "campaign_id", "status", "id"),
    sa.Index("ix_deliveries_subscriber", "subscriber_id"),
)

# The one process that may run the scheduler: a lease renewed by a heartbeat
# (docs/requirements.md R5).
scheduler_lease = sa.Table(
    "scheduler_lease",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# Scheduled sends the staleness guard kept back; an editor releases them with `comms send`.
held_sends = sa.Table(
    "held_sends",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("held_at", UTCDateTime, nullable=False),
)

#: What a `bounce_events` row records (comms.bounces.policy acts on each).
BOUNCE_KINDS = ("hard", "soft", "complaint", "unsubscribe")

# Bounces, complaints and provider unsubscribes; `event_key` makes each one count once.
# SET NULL: erasure keeps the anonymous count per issue, not the person.
bounce_events = sa.Table(
    "bounce_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16)),
    sa.Column("diagnostic", sa.Text),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="SET NULL"),
        index=True,
    ),
    sa.Column(
        "campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    ),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="SET NULL")),
    sa.CheckConstraint(_in("kind", BOUNCE_KINDS), name="ck_bounce_events_kind"),
)

# The editor's desk: who approved which version of an issue (its digest), and where proofs went.
# Slugs, not campaign ids: both happen before a campaign exists.
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(200), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("approved_at", UTCDateTime, nullable=False),
    # JSON: per edition language what its readers read ({"de": {"subject", "preheader",
    # "text"}}), to show what changed since; NULL for approvals recorded before an approval
    # covered every edition (0008), which cover the site's edition only.
    sa.Column("editions", sa.Text),
)

proofs = sa.Table(
    "proofs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(200), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("destination", sa.Text, nullable=False),
    sa.Column("sent_by", sa.String(200), nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    # The language of the edition the proof showed (NULL before 0008: the site's).
    sa.Column("edition", sa.String(16)),
)

# Hits counted against a limit by every server process (sign-ups per IP, confirmation mails
# per address): `key` is an HMAC of the IP or address, never the value; `at` in epoch seconds.
# Rows older than their window are deleted as hits come in.
rate_hits = sa.Table(
    "rate_hits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(32), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_rate_hits_key", "scope", "key", "at"),
)

# One send rate for all workers of a campaign: when the next reserved message may start (epoch
# seconds); a worker reserves a few messages' worth at a time by moving it on.
send_budget = sa.Table(
    "send_budget",
    metadata,
    sa.Column(
        "campaign_id",
        sa.Integer,
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("next_at", sa.Float, nullable=False),
)

# What comms has seen of each content item, for feed timestamps and SEQUENCE
# (comms.publish.feed_state); was var/feeds-state.json.
feed_items = sa.Table(
    "feed_items",
    metadata,
    sa.Column("uid", sa.String(200), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("seen", UTCDateTime, nullable=False),
    sa.Column("changed", UTCDateTime),
)

# WebSub notifications a hub did not take; the next refresh sends them again.
# Was var/websub-pending.json.
websub_pending = sa.Table(
    "websub_pending",
    metadata,
    sa.Column("hub", sa.String(500), primary_key=True),
    sa.Column("topic", sa.String(500), primary_key=True),
)

#: What a `daily_counts` row counts.
COUNT_KINDS = ("view", "unsubscribe", "click", "audience")

# Anonymous counters per day (UTC): views of an issue's archive page, unsubscribes through an
# issue's links and, where turned on, clicks on its links. A number per (kind, issue, item,
# day) and nothing else: no person, no IP address, no cookie (docs/reports.md). `audience` rows
# count each consent-ledger action (subject: `request`, `confirm`, … and `erasure`) as it
# happens, so that purges and erasures later do not shrink the history.
daily_counts = sa.Table(
    "daily_counts",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    # The slug (an audience row: the action).
    sa.Column("subject", sa.String(200), primary_key=True),
    # A view's edition language ('' for the site's), a click's link id, else ''.
    sa.Column("item", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.CheckConstraint(_in("kind", COUNT_KINDS), name="ck_daily_counts_kind"),
)

# Whom an issue reached, counted when its campaign started: one row per combination of
# edition, regions and topics among its recipients. Numbers, not people: they stay when people
# are erased or change their choices later.
campaign_reach = sa.Table(
    "campaign_reach",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "campaign_id",
        sa.Integer,
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("edition", sa.String(16)),
    # Space-padded slug lists as in `subscribers` ('' = no choice: every region or topic).
    sa.Column("regions", sa.Text, nullable=False, server_default=""),
    sa.Column("topics", sa.Text, nullable=False, server_default=""),
    sa.Column("recipients", sa.Integer, nullable=False),
)

#: What happened to a scheduled send that did not go out (`send_problems.kind`).
PROBLEM_KINDS = ("refused", "failed")

# Scheduled sends the send rules refused or that failed, with the reason: shown by `comms
# status` and `comms schedule` until a campaign of the issue moves after it.
send_problems = sa.Table(
    "send_problems",
    metadata,
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("kind", PROBLEM_KINDS), name="ck_send_problems_kind"),
)

# Alerts sent to the office, one row per alert key: each alert goes out once, from any host.
alerts_sent = sa.Table(
    "alerts_sent",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

# The desk in the browser (comms.db.desk_accounts): its accounts, their logins (sessions) and
# what each did. Names, not ids, in the audit log: it outlives a disabled account.
desk_accounts = sa.Table(
    "desk_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # argon2id, with its salt and parameters (comms.core.credentials).
    sa.Column("password_hash", sa.Text, nullable=False),
    # Sealed with the secret key (AES-GCM, comms.core.credentials); NULL: no second factor.
    sa.Column("totp_secret", sa.String(128)),
    # The TOTP time step last used: a code works once.
    sa.Column("totp_step", sa.BigInteger),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("role", DESK_ROLES), name="ck_desk_accounts_role"),
)

desk_sessions = sa.Table(
    "desk_sessions",
    metadata,
    # SHA-256 of the cookie's value: a copy of the table logs nobody in.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("desk_accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # False while the password is checked and the TOTP code is still due.
    sa.Column("complete", sa.Boolean, nullable=False),
    # The token every form of this login carries (CSRF).
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

desk_audit = sa.Table(
    "desk_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    # What it acted on: an issue's slug, an account's name; empty for a login.
    sa.Column("subject", sa.String(200), nullable=False, server_default=""),
    # The content version (an issue's digest) it acted on, where there is one.
    sa.Column("version", sa.String(64)),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)
