"""Lighter follower_order rows: drop checks that repeat others.

The primary key (the order id, derived from fill, subscription and leg) already makes
(fill_pk, subscription_id, leg) unique, and the subscription's foreign key already pins the
leader and the follower. Each dropped check was a lookup per row, 10,000 per fanned-out fill.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 02:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("uq_follower_order_fill_pk"), "follower_order", type_="unique")
    op.drop_constraint(
        op.f("fk_follower_order_leader_id_leader"), "follower_order", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("fk_follower_order_follower_id_follower"), "follower_order", type_="foreignkey"
    )


def downgrade() -> None:
    op.create_foreign_key(
        op.f("fk_follower_order_follower_id_follower"),
        "follower_order",
        "follower",
        ["follower_id"],
        ["id"],
    )
    op.create_foreign_key(
        op.f("fk_follower_order_leader_id_leader"), "follower_order", "leader", ["leader_id"], ["id"]
    )
    op.create_unique_constraint(
        op.f("uq_follower_order_fill_pk"), "follower_order", ["fill_pk", "subscription_id", "leg"]
    )
