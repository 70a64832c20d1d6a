"""A BRIN index on equity_snapshot.created_at, for the equity cache's incremental resync.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_equity_snapshot_created", "equity_snapshot", ["created_at"], postgresql_using="brin"
    )


def downgrade() -> None:
    op.drop_index("ix_equity_snapshot_created", table_name="equity_snapshot")
