"""Refused and failed scheduled sends (`send_problems`), the alerts already sent
(`alerts_sent`, one row per alert key), and the indexes `/metrics` counts with."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_alerts"
down_revision = "0009_reports"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create both tables and the two indexes."""
    op.create_table(
        "send_problems",
        sa.Column("slug", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('refused', 'failed')", name="ck_send_problems_kind"),
    )
    op.create_table(
        "alerts_sent",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_index("ix_consent_action", "consent", ["action", "at"])


def downgrade() -> None:
    """Drop both tables and the two indexes."""
    op.drop_index("ix_consent_action", "consent")
    op.drop_index("ix_subscribers_status", "subscribers")
    op.drop_table("alerts_sent")
    op.drop_table("send_problems")
