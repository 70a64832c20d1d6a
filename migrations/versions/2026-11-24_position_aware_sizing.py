"""Position-aware sizing: subscription settings, leader and subscription positions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscription",
        sa.Column(
            "sizing",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("subscription", sa.Column("status_reason", sa.String(length=200)))
    op.drop_constraint(op.f("ck_subscription_status_known"), "subscription", type_="check")
    op.create_check_constraint(
        op.f("ck_subscription_status_known"),
        "subscription",
        "status IN ('active', 'paused', 'close_only', 'deleted')",
    )
    op.drop_index("ix_subscription_leader_active", table_name="subscription")
    op.create_index(
        "ix_subscription_leader_live",
        "subscription",
        ["leader_id"],
        postgresql_where=sa.text("status IN ('active', 'close_only')"),
    )

    op.add_column("instrument", sa.Column("price_step", sa.Numeric()))
    op.create_check_constraint(
        op.f("ck_instrument_price_step_positive"), "instrument", "price_step > 0"
    )

    op.add_column("follower_order", sa.Column("limit_price", sa.Numeric()))
    op.add_column("follower_order", sa.Column("time_in_force", sa.String(length=8)))
    # The sizing explanation lives in the payload; one copy of it is enough.
    op.drop_column("follower_order", "sizing")

    op.create_table(
        "leader_position",
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("qty", sa.Numeric(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["leader_id"], ["leader.id"], name=op.f("fk_leader_position_leader_id_leader")
        ),
        sa.PrimaryKeyConstraint("leader_id", "symbol", name=op.f("pk_leader_position")),
    )
    op.create_table(
        "subscription_position",
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("qty", sa.Numeric(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscription.id"],
            name=op.f("fk_subscription_position_subscription_id_subscription"),
        ),
        sa.PrimaryKeyConstraint(
            "subscription_id", "symbol", name=op.f("pk_subscription_position")
        ),
    )
    # Sizing caches subscriptions and instruments in memory: tell every instance when a row
    # changes, whoever changed it (the API, another instance, plain SQL).
    op.execute(
        """
        CREATE FUNCTION copytrade_changes_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            row_data record;
        BEGIN
            IF TG_OP = 'DELETE' THEN row_data := OLD; ELSE row_data := NEW; END IF;
            IF TG_TABLE_NAME = 'subscription' THEN
                PERFORM pg_notify('copytrade_changes',
                    json_build_object('kind', 'leader', 'id', row_data.leader_id)::text);
            ELSE
                PERFORM pg_notify('copytrade_changes',
                    json_build_object('kind', 'instrument', 'id', row_data.symbol)::text);
            END IF;
            RETURN NULL;
        END $$;
        """
    )
    for table in ("subscription", "instrument"):
        op.execute(
            f"CREATE TRIGGER {table}_changes_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION copytrade_changes_notify()"
        )


def downgrade() -> None:
    for table in ("subscription", "instrument"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changes_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS copytrade_changes_notify()")
    op.drop_table("subscription_position")
    op.drop_table("leader_position")
    op.add_column(
        "follower_order",
        sa.Column(
            "sizing",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.drop_column("follower_order", "time_in_force")
    op.drop_column("follower_order", "limit_price")
    op.drop_constraint(op.f("ck_instrument_price_step_positive"), "instrument", type_="check")
    op.drop_column("instrument", "price_step")
    op.drop_index("ix_subscription_leader_live", table_name="subscription")
    op.create_index(
        "ix_subscription_leader_active",
        "subscription",
        ["leader_id"],
        postgresql_where=sa.text("status = 'active'"),
    )
    op.execute("UPDATE subscription SET status = 'paused' WHERE status = 'close_only'")
    op.drop_constraint(op.f("ck_subscription_status_known"), "subscription", type_="check")
    op.create_check_constraint(
        op.f("ck_subscription_status_known"),
        "subscription",
        "status IN ('active', 'paused', 'deleted')",
    )
    op.drop_column("subscription", "status_reason")
    op.drop_column("subscription", "sizing")
