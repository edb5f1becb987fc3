"""Links by purpose: a per-person key version, single-use link records, retention marks."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_links"
down_revision = "0003_bounces"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add `subscribers.link_version` and `reduced_at`; create `link_requests`."""
    op.add_column(
        "subscribers",
        sa.Column("link_version", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("subscribers", sa.Column("reduced_at", TS))
    op.create_table(
        "link_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("nonce_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.CheckConstraint("purpose IN ('export', 'erase')", name="ck_link_requests_purpose"),
    )


def downgrade() -> None:
    """Drop `link_requests` and the two columns."""
    op.drop_table("link_requests")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("reduced_at")
        batch.drop_column("link_version")
