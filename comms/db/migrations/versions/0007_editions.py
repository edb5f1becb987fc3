"""Editions: which language's edition each delivery carries (snapshotted when it is queued)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_editions"
down_revision = "0006_multihost"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `deliveries.edition` (NULL for deliveries queued before editions existed)."""
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("edition", sa.String(16)))


def downgrade() -> None:
    """Drop `deliveries.edition`."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("edition")
