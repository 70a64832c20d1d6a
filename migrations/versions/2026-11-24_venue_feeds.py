"""Venue feeds: leader feed config and encrypted credentials, paused leaders, fill details
(fee, reduce-only, liquidation), and listener leases shared by several instances.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leader", sa.Column("feed_config", postgresql.JSONB(), nullable=True))
    op.add_column("leader", sa.Column("feed_secret", sa.Text(), nullable=True))
    op.add_column(
        "leader",
        sa.Column("status", sa.String(length=16), server_default=sa.text("'active'"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_leader_status_known"), "leader", "status IN ('active', 'paused')"
    )
    op.add_column("leader_fill", sa.Column("fee", sa.Numeric(), nullable=True))
    op.add_column("leader_fill", sa.Column("fee_asset", sa.String(length=16), nullable=True))
    op.add_column("leader_fill", sa.Column("reduce_only", sa.Boolean(), nullable=True))
    op.add_column(
        "leader_fill",
        sa.Column("liquidation", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    # Backfill after a reconnect starts from the newest trade the leader made.
    op.create_index(
        "ix_leader_fill_leader_event",
        "leader_fill",
        ["leader_id", sa.text("event_at DESC")],
        postgresql_where=sa.text("kind = 'trade'"),
    )
    op.create_table(
        "service_instance",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_instance")),
    )
    op.create_table(
        "feed_lease",
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=True),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["leader.id"], name=op.f("fk_feed_lease_leader_id_leader"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("leader_id", name=op.f("pk_feed_lease")),
    )
    op.create_index("ix_feed_lease_owner", "feed_lease", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_feed_lease_owner", table_name="feed_lease")
    op.drop_table("feed_lease")
    op.drop_table("service_instance")
    op.drop_index("ix_leader_fill_leader_event", table_name="leader_fill")
    op.drop_column("leader_fill", "liquidation")
    op.drop_column("leader_fill", "reduce_only")
    op.drop_column("leader_fill", "fee_asset")
    op.drop_column("leader_fill", "fee")
    op.drop_constraint(op.f("ck_leader_status_known"), "leader", type_="check")
    op.drop_column("leader", "status")
    op.drop_column("leader", "feed_secret")
    op.drop_column("leader", "feed_config")
