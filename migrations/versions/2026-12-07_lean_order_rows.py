"""Lean order rows: an order keeps its own facts only; what every order of a fill shares moves
to the fill's row, once; the JSON payload column goes (the stream's v2 message is rebuilt from
both by the relay, the API's explanation by app.executors.protocol.messages.sizing_document).

follower_order loses payload, leader_id, leader_equity_snapshot_id and valid_until, and gains
the explanation's per-order part as columns. leader_fill gains valid_until, the leader's equity
and snapshot, and the leader's position before and after the fill. Existing rows are moved:
the fill's part from any of its orders (they all carry the same), each order's part from its
payload; a downgrade writes the payload back from the columns.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FILL_COLUMNS = (
    ("valid_until", sa.DateTime(timezone=True)),
    ("leader_equity", sa.Numeric()),
    ("leader_equity_snapshot_id", sa.BigInteger()),
    ("leader_position_before", sa.Numeric()),
    ("leader_position_after", sa.Numeric()),
)
# (name, type, NOT NULL once filled)
_ORDER_COLUMNS = (
    ("mode", sa.String(length=16), True),
    ("follower_equity", sa.Numeric(), False),
    ("ratio", sa.Numeric(), False),
    ("multiplier", sa.Numeric(), True),
    ("effect", sa.String(length=16), True),
    ("follower_position_before", sa.Numeric(), True),
    ("follower_position_after", sa.Numeric(), True),
    ("target", sa.Numeric(), False),
    ("raw_qty", sa.Numeric(), False),
    ("residue", sa.Numeric(), True),
    ("clamps", sa.Text(), False),
    ("qty_step", sa.Numeric(), True),
    ("held_reason", sa.String(length=32), False),
    ("leader_position_before", sa.Numeric(), False),
    ("leader_position_after", sa.Numeric(), False),
)

_UPGRADE_FILLS = """
UPDATE leader_fill f
   SET valid_until = o.valid_until,
       leader_equity = (o.p ->> 'leader_equity')::numeric,
       leader_equity_snapshot_id = o.leader_equity_snapshot_id,
       leader_position_before = (o.p ->> 'leader_position_before')::numeric,
       leader_position_after = (o.p ->> 'leader_position_after')::numeric
  FROM (SELECT DISTINCT ON (fill_pk) fill_pk, valid_until, leader_equity_snapshot_id,
               payload::jsonb -> 'sizing' AS p
          FROM follower_order ORDER BY fill_pk, id) o
 WHERE f.id = o.fill_pk
"""
_UPGRADE_ORDERS = """
UPDATE follower_order o
   SET mode = x.p ->> 'mode',
       follower_equity = (x.p ->> 'follower_equity')::numeric,
       ratio = (x.p ->> 'ratio')::numeric,
       multiplier = (x.p ->> 'multiplier')::numeric,
       effect = x.p ->> 'effect',
       follower_position_before = (x.p ->> 'follower_position_before')::numeric,
       follower_position_after = (x.p ->> 'follower_position_after')::numeric,
       target = (x.p ->> 'target')::numeric,
       raw_qty = (x.p ->> 'raw_qty')::numeric,
       residue = (x.p ->> 'residue')::numeric,
       clamps = NULLIF(array_to_string(
           ARRAY(SELECT jsonb_array_elements_text(x.p -> 'clamps')), ','), ''),
       qty_step = (x.p ->> 'qty_step')::numeric,
       held_reason = CASE WHEN o.skip_reason IS NULL THEN x.p ->> 'skip_reason' END,
       leader_position_before = CASE
           WHEN (x.p ->> 'leader_position_before')::numeric
                IS DISTINCT FROM f.leader_position_before
           THEN (x.p ->> 'leader_position_before')::numeric END,
       leader_position_after = CASE
           WHEN (x.p ->> 'leader_position_after')::numeric
                IS DISTINCT FROM f.leader_position_after
           THEN (x.p ->> 'leader_position_after')::numeric END
  FROM (SELECT id, payload::jsonb -> 'sizing' AS p FROM follower_order) x, leader_fill f
 WHERE x.id = o.id AND f.id = o.fill_pk
"""


def _iso(ts: str) -> str:
    """Python's datetime.isoformat() of a UTC timestamptz (no fraction when it is zero)."""
    return (
        f"to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN extract(microseconds FROM {ts})::int % 1000000 <> 0"
        f" THEN to_char({ts} AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"
    )


def _num(value: str) -> str:
    """app.domain.decimals.fmt of a numeric: no trailing zeros."""
    return f"trim_scale({value})::text"


_DOWNGRADE_ORDERS = f"""
UPDATE follower_order o
   SET leader_id = f.leader_id,
       leader_equity_snapshot_id = f.leader_equity_snapshot_id,
       valid_until = coalesce(f.valid_until, o.created_at),
       payload = json_build_object(
           'v', 1, 'order_id', o.id, 'follower_id', o.follower_id::text,
           'leader_id', f.leader_id::text, 'subscription_id', o.subscription_id::text,
           'leader_fill_id', f.fill_id, 'symbol', o.symbol, 'side', o.side,
           'qty', {_num("o.qty")}, 'type', o.type, 'reduce_only', o.reduce_only,
           'limit_price', {_num("o.limit_price")}, 'time_in_force', o.time_in_force,
           'created_at', {_iso("o.created_at")},
           'valid_until', {_iso("coalesce(f.valid_until, o.created_at)")},
           'sizing', json_build_object(
               'mode', o.mode, 'leader_price', {_num("f.price")},
               'leader_equity', {_num("f.leader_equity")},
               'leader_equity_snapshot_id', f.leader_equity_snapshot_id,
               'follower_equity', {_num("o.follower_equity")},
               'follower_equity_snapshot_id', o.follower_equity_snapshot_id,
               'ratio', {_num("o.ratio")}, 'multiplier', {_num("o.multiplier")},
               'effect', o.effect,
               'leader_position_before',
               {_num("coalesce(o.leader_position_before, f.leader_position_before)")},
               'leader_position_after',
               {_num("coalesce(o.leader_position_after, f.leader_position_after)")},
               'follower_position_before', {_num("o.follower_position_before")},
               'follower_position_after', {_num("o.follower_position_after")},
               'target', {_num("o.target")}, 'raw_qty', {_num("o.raw_qty")},
               'residue', {_num("o.residue")},
               'clamps', CASE WHEN o.clamps IS NULL THEN '[]'::json
                              ELSE to_json(string_to_array(o.clamps, ',')) END,
               'qty_step', {_num("o.qty_step")},
               'skip_reason', coalesce(o.skip_reason, o.held_reason)),
           'leader_fill', json_build_object(
               'liquidation', f.liquidation, 'reduce_only', f.reduce_only,
               'fee', {_num("f.fee")}, 'fee_asset', f.fee_asset)
       )::text
  FROM leader_fill f
 WHERE f.id = o.fill_pk
"""


def upgrade() -> None:
    for name, type_ in _FILL_COLUMNS:
        op.add_column("leader_fill", sa.Column(name, type_, nullable=True))
    for name, type_, _ in _ORDER_COLUMNS:
        op.add_column("follower_order", sa.Column(name, type_, nullable=True))
    op.execute(_UPGRADE_FILLS)
    op.execute(_UPGRADE_ORDERS)
    for name, _, required in _ORDER_COLUMNS:
        if required:
            op.alter_column("follower_order", name, nullable=False)
    for name in ("payload", "leader_id", "leader_equity_snapshot_id", "valid_until"):
        op.drop_column("follower_order", name)


def downgrade() -> None:
    op.add_column("follower_order", sa.Column("payload", sa.Text(), nullable=True))
    op.add_column("follower_order", sa.Column("leader_id", sa.Uuid(), nullable=True))
    op.add_column(
        "follower_order", sa.Column("leader_equity_snapshot_id", sa.BigInteger(), nullable=True)
    )
    op.add_column(
        "follower_order", sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(_DOWNGRADE_ORDERS)
    for name in ("payload", "leader_id", "valid_until"):
        op.alter_column("follower_order", name, nullable=False)
    for name, _, _ in _ORDER_COLUMNS:
        op.drop_column("follower_order", name)
    for name, _ in _FILL_COLUMNS:
        op.drop_column("leader_fill", name)
