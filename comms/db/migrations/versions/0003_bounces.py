"""Bounces and complaints: one row per report or webhook event that named a delivery or person."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_bounces"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `bounce_events`."""
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("diagnostic", sa.Text),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="SET NULL"),
            index=True,
        ),
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="SET NULL"),
            index=True,
        ),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="SET NULL")),
        sa.CheckConstraint(
            "kind IN ('hard', 'soft', 'complaint', 'unsubscribe')", name="ck_bounce_events_kind"
        ),
    )


def downgrade() -> None:
    """Drop `bounce_events`."""
    op.drop_table("bounce_events")
