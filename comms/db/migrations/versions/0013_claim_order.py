"""The claim's index in id order: a claim reads its rows off the index instead of sorting."""

from __future__ import annotations

from alembic import op

revision = "0013_claim_order"
down_revision = "0012_sealed_totp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index deliveries by (campaign, status, id): a claim takes the first due rows of each
    claimable status in id order and stops, rather than sorting every queued row of the
    campaign per claim (comms.db.ledger)."""
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["campaign_id", "status", "id"])


def downgrade() -> None:
    """Back to the index by retry time."""
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index(
        "ix_deliveries_claim", "deliveries", ["campaign_id", "status", "next_attempt_at"]
    )
