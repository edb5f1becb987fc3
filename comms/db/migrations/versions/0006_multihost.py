"""State several hosts share: rate-limit hits, the send budget of a campaign, the feed history
and pending WebSub notifications (carried over from var/feeds-state.json and
var/websub-pending.json beside the config file, when the upgrade knows that folder)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

from comms.core.errors import CommsError

revision = "0006_multihost"
down_revision = "0005_desk"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tables, then copy the state files' contents into them."""
    op.create_table(
        "rate_hits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_rate_hits_key", "rate_hits", ["scope", "key", "at"])
    op.create_table(
        "send_budget",
        sa.Column(
            "campaign_id",
            sa.Integer,
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("next_at", sa.Float, nullable=False),
    )
    feed_items = op.create_table(
        "feed_items",
        sa.Column("uid", sa.String(200), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("seen", TS, nullable=False),
        sa.Column("changed", TS),
    )
    pending = op.create_table(
        "websub_pending",
        sa.Column("hub", sa.String(500), primary_key=True),
        sa.Column("topic", sa.String(500), primary_key=True),
    )
    config = op.get_context().config
    root = config.attributes.get("files_root") if config is not None else None
    if root is not None:
        _carry_over(Path(root), feed_items, pending)


def _utc(value: str | None, sqlite: bool) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value).astimezone(UTC)
    return moment.replace(tzinfo=None) if sqlite else moment


def _carry_over(root: Path, feed_items: Any, pending: Any) -> None:
    """Copy var/feeds-state.json and var/websub-pending.json into the new tables.

    A broken feed state stops the upgrade (nothing changes) with its path: better than losing
    every SEQUENCE. The files
    stay where they are; comms no longer reads them once the database has their rows.
    """
    sqlite = op.get_bind().dialect.name == "sqlite"
    feeds = root / "var" / "feeds-state.json"
    if feeds.exists():
        try:
            items = json.loads(feeds.read_text(encoding="utf-8"))["items"]
            rows = [
                {
                    "uid": uid,
                    "digest": str(entry["digest"]),
                    "sequence": int(entry["sequence"]),
                    "seen": _utc(entry["seen"], sqlite),
                    "changed": _utc(entry.get("changed"), sqlite),
                }
                for uid, entry in items.items()
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CommsError(
                f"{feeds}: cannot read the feed state ({exc}); fix or remove it"
            ) from None
        if rows:
            op.bulk_insert(feed_items, rows)
    queue = root / "var" / "websub-pending.json"
    if queue.exists():
        try:
            pairs = {(str(hub), str(topic)) for hub, topic in json.loads(queue.read_text("utf-8"))}
        except (OSError, ValueError, TypeError):
            pairs = set()  # as the refresh treated it: a broken queue is an empty one
        if pairs:
            op.bulk_insert(pending, [{"hub": h, "topic": t} for h, t in sorted(pairs)])


def downgrade() -> None:
    """Drop them (the state files are not written back)."""
    op.drop_table("websub_pending")
    op.drop_table("feed_items")
    op.drop_table("send_budget")
    op.drop_index("ix_rate_hits_key", "rate_hits")
    op.drop_table("rate_hits")
