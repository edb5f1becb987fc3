"""The editor's desk: approvals of an issue's digest and the proofs sent of it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_desk"
down_revision = "0003_bounces"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `approvals` and `proofs`."""
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False, index=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("approved_at", TS, nullable=False),
    )
    op.create_table(
        "proofs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False, index=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("sent_by", sa.String(200), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
    )


def downgrade() -> None:
    """Drop `approvals` and `proofs`."""
    op.drop_table("proofs")
    op.drop_table("approvals")
