"""The desk in the browser: accounts with roles, their logins (sessions) and the audit log."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_desk_accounts"
down_revision = "0010_alerts"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `desk_accounts`, `desk_sessions` and `desk_audit`."""
    op.create_table(
        "desk_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("totp_step", sa.BigInteger),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("role IN ('editor', 'approver', 'admin')", name="ck_desk_accounts_role"),
    )
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("desk_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_desk_sessions_account_id", "desk_sessions", ["account_id"])
    op.create_table(
        "desk_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False, server_default=""),
        sa.Column("version", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_desk_audit_at", "desk_audit", ["at"])


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_index("ix_desk_audit_at", "desk_audit")
    op.drop_table("desk_audit")
    op.drop_index("ix_desk_sessions_account_id", "desk_sessions")
    op.drop_table("desk_sessions")
    op.drop_table("desk_accounts")
