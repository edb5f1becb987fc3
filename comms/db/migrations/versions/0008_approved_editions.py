"""Approvals over every edition: what each edition's readers read, as approved; proofs name
their edition."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_approved_editions"
down_revision = "0007_editions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `approvals.editions` (NULL for approvals of the site's edition alone, made before)
    and `proofs.edition` (NULL for proofs of the site's edition, sent before)."""
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("editions", sa.Text))
    with op.batch_alter_table("proofs") as batch:
        batch.add_column(sa.Column("edition", sa.String(16)))


def downgrade() -> None:
    """Drop `approvals.editions` and `proofs.edition`."""
    with op.batch_alter_table("proofs") as batch:
        batch.drop_column("edition")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("editions")
