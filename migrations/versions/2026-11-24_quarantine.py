"""Quarantine: leader fills too absurd to size are kept here with a reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_fill",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["leader.id"], name=op.f("fk_quarantined_fill_leader_id_leader")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_fill")),
    )
    op.create_index(
        "ix_quarantined_fill_leader", "quarantined_fill", ["leader_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_quarantined_fill_leader", table_name="quarantined_fill")
    op.drop_table("quarantined_fill")
