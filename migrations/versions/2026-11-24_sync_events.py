"""Sync events: copy_open_positions records its orders against a 'sync' leader_fill row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "leader_fill",
        sa.Column("kind", sa.String(length=8), server_default=sa.text("'trade'"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_leader_fill_kind_known"), "leader_fill", "kind IN ('trade', 'sync')"
    )


def downgrade() -> None:
    sync = "SELECT id FROM leader_fill WHERE kind = 'sync'"
    op.execute(
        "DELETE FROM order_event WHERE order_id IN "
        f"(SELECT id FROM follower_order WHERE fill_pk IN ({sync}))"
    )
    op.execute(f"DELETE FROM follower_order WHERE fill_pk IN ({sync})")
    op.execute("DELETE FROM leader_fill WHERE kind = 'sync'")
    op.drop_constraint(op.f("ck_leader_fill_kind_known"), "leader_fill", type_="check")
    op.drop_column("leader_fill", "kind")
