"""Reports: anonymous daily counters (archive views, unsubscribes per issue, clicks, the
audience's consent actions, filled from the consent ledger) and the reach of each campaign
(recipients per edition, regions and topics), filled for the campaigns that exist from their
deliveries' people as they are now."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_reports"
down_revision = "0008_approved_editions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `daily_counts` and `campaign_reach`; count the reach of existing campaigns."""
    op.create_table(
        "daily_counts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "kind IN ('view', 'unsubscribe', 'click', 'audience')", name="ck_daily_counts_kind"
        ),
    )
    op.create_table(
        "campaign_reach",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("edition", sa.String(16)),
        sa.Column("regions", sa.Text, nullable=False, server_default=""),
        sa.Column("topics", sa.Text, nullable=False, server_default=""),
        sa.Column("recipients", sa.Integer, nullable=False),
    )
    op.create_index("ix_campaign_reach_campaign_id", "campaign_reach", ["campaign_id"])
    # The audience's history so far, from the consent ledger (erased people left none).
    at = "timezone('UTC', at)" if op.get_bind().dialect.name == "postgresql" else "at"
    op.execute(
        "INSERT INTO daily_counts (kind, subject, item, day, count) "
        f"SELECT 'audience', action, '', date({at}), COUNT(*) FROM consent "
        f"GROUP BY action, date({at})"
    )
    # Campaigns from before: their people as they are now (erased ones count without choices).
    op.execute(
        "INSERT INTO campaign_reach (campaign_id, edition, regions, topics, recipients) "
        "SELECT d.campaign_id, d.edition, COALESCE(s.regions, ''), COALESCE(s.topics, ''), "
        "COUNT(*) FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id "
        "GROUP BY d.campaign_id, d.edition, COALESCE(s.regions, ''), COALESCE(s.topics, '')"
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_campaign_reach_campaign_id", "campaign_reach")
    op.drop_table("campaign_reach")
    op.drop_table("daily_counts")
