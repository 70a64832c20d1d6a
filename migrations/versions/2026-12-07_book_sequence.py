"""A sequence per leader's book: every write that moves the leader's positions, or its
subscriptions', adds one, and the fill statement records only against the sequence the
sizing engine planned from.

An instance caches a leader's book (its positions and its subscriptions' positions); another
instance recording a fill for the same leader moves them without telling it. The fill
statement compares the cached sequence with this one and sets the next, so a fill planned
from positions that moved elsewhere records nothing, and the engine reloads and plans again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "leader",
        sa.Column("book_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("leader", "book_seq")
