"""State several hosts share: rate-limit hits and the send budget of a campaign."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_multihost"
down_revision = "0003_bounces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `rate_hits` and `send_budget`."""
    op.create_table(
        "rate_hits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_rate_hits_key", "rate_hits", ["scope", "key", "at"])
    op.create_table(
        "send_budget",
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("next_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("send_budget")
    op.drop_index("ix_rate_hits_key", "rate_hits")
    op.drop_table("rate_hits")
