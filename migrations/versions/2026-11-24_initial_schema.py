"""Initial schema: accounts, equity snapshots, instruments, subscriptions, fills, orders.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 00:52:10.120924
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('follower',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('api_key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower')),
    sa.UniqueConstraint('api_key_hash', name=op.f('uq_follower_api_key_hash'))
    )
    op.create_table('instrument',
    sa.Column('symbol', sa.String(length=48), nullable=False),
    sa.Column('qty_step', sa.Numeric(), nullable=False),
    sa.Column('min_qty', sa.Numeric(), nullable=False),
    sa.Column('min_notional', sa.Numeric(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('min_notional >= 0', name=op.f('ck_instrument_min_notional_nonnegative')),
    sa.CheckConstraint('min_qty >= 0', name=op.f('ck_instrument_min_qty_nonnegative')),
    sa.CheckConstraint('qty_step > 0', name=op.f('ck_instrument_qty_step_positive')),
    sa.PrimaryKeyConstraint('symbol', name=op.f('pk_instrument'))
    )
    op.create_table('leader',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('feed_kind', sa.String(length=32), nullable=False),
    sa.Column('feed_url', sa.Text(), nullable=True),
    sa.Column('push_token_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leader')),
    sa.UniqueConstraint('push_token_hash', name=op.f('uq_leader_push_token_hash'))
    )
    op.create_table('equity_snapshot',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('leader_id', sa.Uuid(), nullable=True),
    sa.Column('follower_id', sa.Uuid(), nullable=True),
    sa.Column('equity', sa.Numeric(), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(leader_id IS NULL) <> (follower_id IS NULL)', name=op.f('ck_equity_snapshot_exactly_one_account')),
    sa.CheckConstraint('equity > 0', name=op.f('ck_equity_snapshot_equity_positive')),
    sa.ForeignKeyConstraint(['follower_id'], ['follower.id'], name=op.f('fk_equity_snapshot_follower_id_follower')),
    sa.ForeignKeyConstraint(['leader_id'], ['leader.id'], name=op.f('fk_equity_snapshot_leader_id_leader')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equity_snapshot'))
    )
    op.create_index('ix_equity_snapshot_follower_newest', 'equity_snapshot', ['follower_id', sa.literal_column('as_of DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('ix_equity_snapshot_leader_newest', 'equity_snapshot', ['leader_id', sa.literal_column('as_of DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_table('leader_fill',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('leader_id', sa.Uuid(), nullable=False),
    sa.Column('fill_id', sa.String(length=128), nullable=False),
    sa.Column('symbol', sa.String(length=48), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('qty', sa.Numeric(), nullable=False),
    sa.Column('price', sa.Numeric(), nullable=False),
    sa.Column('event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f('ck_leader_fill_side_known')),
    sa.CheckConstraint('price > 0', name=op.f('ck_leader_fill_price_positive')),
    sa.CheckConstraint('qty > 0', name=op.f('ck_leader_fill_qty_positive')),
    sa.ForeignKeyConstraint(['leader_id'], ['leader.id'], name=op.f('fk_leader_fill_leader_id_leader')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leader_fill')),
    sa.UniqueConstraint('leader_id', 'fill_id', name=op.f('uq_leader_fill_leader_id'))
    )
    op.create_table('subscription',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('follower_id', sa.Uuid(), nullable=False),
    sa.Column('leader_id', sa.Uuid(), nullable=False),
    sa.Column('multiplier', sa.Numeric(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('active', 'paused', 'deleted')", name=op.f('ck_subscription_status_known')),
    sa.CheckConstraint('multiplier > 0', name=op.f('ck_subscription_multiplier_positive')),
    sa.ForeignKeyConstraint(['follower_id'], ['follower.id'], name=op.f('fk_subscription_follower_id_follower')),
    sa.ForeignKeyConstraint(['leader_id'], ['leader.id'], name=op.f('fk_subscription_leader_id_leader')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription'))
    )
    op.create_index('ix_subscription_leader_active', 'subscription', ['leader_id'], unique=False, postgresql_where=sa.text("status = 'active'"))
    op.create_index('uq_subscription_follower_leader_live', 'subscription', ['follower_id', 'leader_id'], unique=True, postgresql_where=sa.text("status <> 'deleted'"))
    op.create_table('follower_order',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fill_pk', sa.BigInteger(), nullable=False),
    sa.Column('leg', sa.SmallInteger(), nullable=False),
    sa.Column('follower_id', sa.Uuid(), nullable=False),
    sa.Column('leader_id', sa.Uuid(), nullable=False),
    sa.Column('subscription_id', sa.Uuid(), nullable=False),
    sa.Column('leader_equity_snapshot_id', sa.BigInteger(), nullable=True),
    sa.Column('follower_equity_snapshot_id', sa.BigInteger(), nullable=True),
    sa.Column('symbol', sa.String(length=48), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('qty', sa.Numeric(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('reduce_only', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('skip_reason', sa.String(length=32), nullable=True),
    sa.Column('sizing', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'dispatched', 'skipped')", name=op.f('ck_follower_order_status_known')),
    sa.CheckConstraint('qty >= 0', name=op.f('ck_follower_order_qty_nonnegative')),
    sa.ForeignKeyConstraint(['fill_pk'], ['leader_fill.id'], name=op.f('fk_follower_order_fill_pk_leader_fill')),
    sa.ForeignKeyConstraint(['follower_equity_snapshot_id'], ['equity_snapshot.id'], name=op.f('fk_follower_order_follower_equity_snapshot_id_equity_snapshot')),
    sa.ForeignKeyConstraint(['follower_id'], ['follower.id'], name=op.f('fk_follower_order_follower_id_follower')),
    sa.ForeignKeyConstraint(['leader_equity_snapshot_id'], ['equity_snapshot.id'], name=op.f('fk_follower_order_leader_equity_snapshot_id_equity_snapshot')),
    sa.ForeignKeyConstraint(['leader_id'], ['leader.id'], name=op.f('fk_follower_order_leader_id_leader')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], name=op.f('fk_follower_order_subscription_id_subscription')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower_order')),
    sa.UniqueConstraint('fill_pk', 'subscription_id', 'leg', name=op.f('uq_follower_order_fill_pk'))
    )
    op.create_index('ix_follower_order_follower_newest', 'follower_order', ['follower_id', sa.literal_column('created_at DESC'), 'id'], unique=False)
    op.create_index('ix_follower_order_pending', 'follower_order', ['created_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))

    # Equity snapshots may be inserted by other systems with plain SQL: notify every insert so
    # the sizing cache never has to query equity on the hot path.
    op.execute(
        """
        CREATE FUNCTION copytrade_equity_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('copytrade_equity', json_build_object(
                'id', NEW.id,
                'leader_id', NEW.leader_id,
                'follower_id', NEW.follower_id,
                'equity', NEW.equity::text,
                'as_of', NEW.as_of
            )::text);
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER equity_snapshot_notify AFTER INSERT ON equity_snapshot "
        "FOR EACH ROW EXECUTE FUNCTION copytrade_equity_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS equity_snapshot_notify ON equity_snapshot")
    op.execute("DROP FUNCTION IF EXISTS copytrade_equity_notify()")
    op.drop_index('ix_follower_order_pending', table_name='follower_order', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_follower_order_follower_newest', table_name='follower_order')
    op.drop_table('follower_order')
    op.drop_index('uq_subscription_follower_leader_live', table_name='subscription', postgresql_where=sa.text("status <> 'deleted'"))
    op.drop_index('ix_subscription_leader_active', table_name='subscription', postgresql_where=sa.text("status = 'active'"))
    op.drop_table('subscription')
    op.drop_table('leader_fill')
    op.drop_index('ix_equity_snapshot_leader_newest', table_name='equity_snapshot')
    op.drop_index('ix_equity_snapshot_follower_newest', table_name='equity_snapshot')
    op.drop_table('equity_snapshot')
    op.drop_table('leader')
    op.drop_table('instrument')
    op.drop_table('follower')
