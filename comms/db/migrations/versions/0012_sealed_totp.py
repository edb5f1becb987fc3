"""Room for sealed TOTP secrets: the desk keeps them encrypted (comms.core.credentials)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_sealed_totp"
down_revision = "0011_desk_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen `desk_accounts.totp_secret` from 64 to 128 characters (a sealed one has 83)."""
    with op.batch_alter_table("desk_accounts") as batch:
        batch.alter_column(
            "totp_secret", type_=sa.String(128), existing_type=sa.String(64), existing_nullable=True
        )


def downgrade() -> None:
    """Back to 64 characters (a sealed secret no longer fits: reset those accounts first)."""
    with op.batch_alter_table("desk_accounts") as batch:
        batch.alter_column(
            "totp_secret", type_=sa.String(64), existing_type=sa.String(128), existing_nullable=True
        )
