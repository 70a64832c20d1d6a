"""Follower accounts on venues: credentials, status, live equity, executor leases, and the
positions each venue reports.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "follower_account",
        sa.Column("follower_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", postgresql.JSONB(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'connecting'"), nullable=False
        ),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("equity", sa.Numeric(), nullable=True),
        sa.Column("equity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("positions_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('connecting', 'ready', 'error')",
            name=op.f("ck_follower_account_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["follower.id"],
            name=op.f("fk_follower_account_follower_id_follower"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", name=op.f("pk_follower_account")),
    )
    op.create_index("ix_follower_account_owner", "follower_account", ["owner"])
    op.create_table(
        "venue_position",
        sa.Column("follower_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("qty", sa.Numeric(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["follower.id"],
            name=op.f("fk_venue_position_follower_id_follower"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", "symbol", name=op.f("pk_venue_position")),
    )


def downgrade() -> None:
    op.drop_table("venue_position")
    op.drop_index("ix_follower_account_owner", table_name="follower_account")
    op.drop_table("follower_account")
