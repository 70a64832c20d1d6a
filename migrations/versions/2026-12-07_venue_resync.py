"""Venue marks and durable copy_open_positions jobs.

leader_mark: the venue's mark (or entry) price per leader position, read with its positions,
so copy_open_positions can size a leader that has not traded since it was added.
position_copy: one copy_open_positions job per subscription, written with the subscription
and run by the outbox relay until done; its report says which symbols were synced or why not.

Revision ID: 0016
Revises: 0020
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leader_mark",
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_leader_mark_price_positive")),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["leader.id"], name=op.f("fk_leader_mark_leader_id_leader")
        ),
        sa.PrimaryKeyConstraint("leader_id", "symbol", name=op.f("pk_leader_mark")),
    )
    op.create_table(
        "position_copy",
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_position_copy")),
    )
    op.create_index(
        "ix_position_copy_pending",
        "position_copy",
        ["created_at"],
        postgresql_where=sa.text("done_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_position_copy_pending", table_name="position_copy")
    op.drop_table("position_copy")
    op.drop_table("leader_mark")
