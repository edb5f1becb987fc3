"""Scheduler: the lease row of the one scheduler process and the sends held as stale."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `scheduler_lease` and `held_sends`."""
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "held_sends",
        sa.Column("slug", sa.String(200), primary_key=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("held_at", TS, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("held_sends")
    op.drop_table("scheduler_lease")
