"""Order lifecycle: expiry, executor reports (status events, fills), follower positions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:58:57.820749
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "'pending', 'dispatched', 'skipped', 'accepted', 'partially_filled', 'filled', "
    "'rejected', 'expired'"
)


def upgrade() -> None:
    op.create_table(
        "follower_position",
        sa.Column("follower_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("qty", sa.Numeric(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["follower_id"], ["follower.id"], name=op.f("fk_follower_position_follower_id_follower")
        ),
        sa.PrimaryKeyConstraint("follower_id", "symbol", name=op.f("pk_follower_position")),
    )
    op.create_table(
        "order_event",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled_qty", sa.Numeric(), nullable=False),
        sa.Column("avg_price", sa.Numeric(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["follower_order.id"], name=op.f("fk_order_event_order_id_follower_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_event")),
    )
    op.create_index("ix_order_event_order", "order_event", ["order_id", "id"], unique=False)

    op.add_column("follower_order", sa.Column("valid_until", sa.DateTime(timezone=True)))
    op.execute("UPDATE follower_order SET valid_until = created_at + interval '30 seconds'")
    op.alter_column("follower_order", "valid_until", nullable=False)
    op.add_column(
        "follower_order",
        sa.Column("filled_qty", sa.Numeric(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("follower_order", sa.Column("avg_price", sa.Numeric(), nullable=True))
    op.add_column("follower_order", sa.Column("status_reason", sa.String(length=200)))
    op.add_column(
        "follower_order",
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.drop_constraint(op.f("ck_follower_order_status_known"), "follower_order", type_="check")
    op.create_check_constraint(
        op.f("ck_follower_order_status_known"), "follower_order", f"status IN ({STATUSES})"
    )
    op.create_check_constraint(
        op.f("ck_follower_order_filled_within_qty"),
        "follower_order",
        "filled_qty >= 0 AND filled_qty <= qty",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_follower_order_filled_within_qty"), "follower_order", type_="check"
    )
    op.drop_constraint(op.f("ck_follower_order_status_known"), "follower_order", type_="check")
    op.execute(
        "UPDATE follower_order SET status = 'dispatched' "
        "WHERE status NOT IN ('pending', 'dispatched', 'skipped')"
    )
    op.create_check_constraint(
        op.f("ck_follower_order_status_known"),
        "follower_order",
        "status IN ('pending', 'dispatched', 'skipped')",
    )
    for column in ("updated_at", "status_reason", "avg_price", "filled_qty", "valid_until"):
        op.drop_column("follower_order", column)
    op.drop_index("ix_order_event_order", table_name="order_event")
    op.drop_table("order_event")
    op.drop_table("follower_position")
