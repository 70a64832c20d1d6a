"""Follower drift: per follower and symbol, what it holds on its own (adopt), the drift last
measured against its target, and when a resync was last sent (the durable
drift_min_interval_s limit, shared by every instance).

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "follower_drift",
        sa.Column("follower_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("adopted", sa.Numeric(), server_default=sa.text("0"), nullable=False),
        sa.Column("drift", sa.Numeric(), nullable=True),
        sa.Column("fraction", sa.Numeric(), nullable=True),
        sa.Column("flagged", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resynced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["follower.id"],
            name=op.f("fk_follower_drift_follower_id_follower"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", "symbol", name=op.f("pk_follower_drift")),
    )


def downgrade() -> None:
    op.drop_table("follower_drift")
