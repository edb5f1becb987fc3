"""Initial schema: meta, subscribers, consent, suppression, campaigns, deliveries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first version."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # SQLite accepts a forward reference to `consent`; elsewhere the key is added afterwards.
    consent_fk = (
        [sa.ForeignKeyConstraint(["consent_id"], ["consent.id"], name="fk_subscribers_consent")]
        if sqlite
        else []
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("suppression_key", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(200)),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("topics", sa.Text, nullable=False, server_default=""),
        sa.Column("regions", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("consent_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("confirmed_at", TS),
        sa.Column("unsubscribed_at", TS),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')",
            name="ck_subscribers_status",
        ),
        sa.CheckConstraint(
            "status <> 'active' OR consent_id IS NOT NULL", name="ck_subscribers_active_consent"
        ),
        *consent_fk,
    )
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.Column("consent_version", sa.String(64)),
        sa.Column("channel", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.CheckConstraint(
            "action IN ('request', 'confirm', 'import', 'unsubscribe', 'bounce', 'complaint',"
            " 'erase-request')",
            name="ck_consent_action",
        ),
    )
    if not sqlite:
        op.create_foreign_key(
            "fk_subscribers_consent", "subscribers", "consent", ["consent_id"], ["id"]
        )
    op.create_table(
        "suppression",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False, unique=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('sending', 'waiting', 'paused', 'done')", name="ck_campaigns_status"
        ),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS),
        sa.Column("claimed_by", sa.String(120)),
        sa.Column("claimed_until", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.String(255)),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("updated_at", TS),
        sa.UniqueConstraint("campaign_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'ambiguous', 'skipped')",
            name="ck_deliveries_status",
        ),
    )
    op.create_index(
        "ix_deliveries_claim", "deliveries", ["campaign_id", "status", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id"])


def downgrade() -> None:
    """Drop everything (only for development: it loses all data)."""
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_subscribers_consent", "subscribers", type_="foreignkey")
    for table in ("deliveries", "campaigns", "suppression", "consent", "subscribers", "meta"):
        op.drop_table(table)
