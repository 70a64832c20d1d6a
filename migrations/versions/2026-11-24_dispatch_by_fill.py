"""Dispatch is recorded per fill: one row updated per fill instead of one per order.

Marking each order dispatched rewrote every order row (and its three index entries) right
after inserting it: on a fan-out of 10,000 that was a second write as large as the first.
A fill's orders go to Redis together, so the fill now carries the mark, and the relay's work
list is the fills not yet marked. An order row's status stays ``pending`` until its executor
reports; readers show ``dispatched`` when its fill is marked (app.domain.lifecycle).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "leader_fill", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True)
    )
    # A fill with an order still pending stays unmarked, so the relay sends it (again).
    op.execute(
        "UPDATE leader_fill f SET dispatched_at = COALESCE("
        " (SELECT max(o.dispatched_at) FROM follower_order o WHERE o.fill_pk = f.id),"
        " f.created_at)"
        " WHERE NOT EXISTS (SELECT 1 FROM follower_order o"
        "                   WHERE o.fill_pk = f.id AND o.status = 'pending')"
    )
    op.create_index(
        "ix_leader_fill_undispatched",
        "leader_fill",
        ["created_at"],
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.drop_index("ix_follower_order_pending", table_name="follower_order")
    op.create_index("ix_follower_order_fill_pk", "follower_order", ["fill_pk"])
    op.drop_column("follower_order", "dispatched_at")


def downgrade() -> None:
    op.add_column(
        "follower_order", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE follower_order o SET dispatched_at = f.dispatched_at,"
        " status = CASE WHEN o.status = 'pending' THEN 'dispatched' ELSE o.status END"
        " FROM leader_fill f WHERE f.id = o.fill_pk AND f.dispatched_at IS NOT NULL"
        " AND o.status <> 'skipped'"
    )
    op.drop_index("ix_follower_order_fill_pk", table_name="follower_order")
    op.create_index(
        "ix_follower_order_pending",
        "follower_order",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_leader_fill_undispatched", table_name="leader_fill")
    op.drop_column("leader_fill", "dispatched_at")
