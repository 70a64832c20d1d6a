"""The hot path's SQL, on raw asyncpg: one statement records a fill and everything it caused.

One statement is one transaction in autocommit: the fill, its orders, the position moves and
any subscription status change commit together or not at all, in a single round trip. A fill id
seen before inserts nothing, and every other part reads from the fill's insert, so a duplicate
writes nothing anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from app.domain.model import Fill

RECORD_FILL = """
WITH f AS (
    INSERT INTO leader_fill (leader_id, fill_id, symbol, side, qty, price, event_at, received_at,
                             kind, fee, fee_asset, reduce_only, liquidation, dispatched_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $34, $35, $36, $37, $38, $39)
    ON CONFLICT (leader_id, fill_id) DO NOTHING
    RETURNING id
), o AS (
    INSERT INTO follower_order (
        id, fill_pk, leg, follower_id, leader_id, subscription_id,
        leader_equity_snapshot_id, follower_equity_snapshot_id, symbol, side, qty, type,
        reduce_only, limit_price, time_in_force, status, skip_reason, payload,
        created_at, valid_until)
    SELECT u.id, f.id, u.leg, u.follower_id, $1, u.subscription_id, u.les, u.fes, u.symbol,
           u.side, u.qty, u.type, u.reduce_only, u.limit_price, u.tif, u.status, u.skip_reason,
           u.payload, $9, $10
      FROM f, unnest($11::varchar[], $12::int2[], $13::uuid[], $14::uuid[], $15::int8[],
                     $16::int8[], $17::varchar[], $18::varchar[], $19::numeric[], $20::varchar[],
                     $21::bool[], $22::numeric[], $23::varchar[], $24::varchar[], $25::varchar[],
                     $26::text[])
           AS u(id, leg, follower_id, subscription_id, les, fes, symbol, side, qty, type,
                reduce_only, limit_price, tif, status, skip_reason, payload)
), lp AS (
    INSERT INTO leader_position AS p (leader_id, symbol, qty, updated_at)
    SELECT $1, $3, $27, now() FROM f
    ON CONFLICT (leader_id, symbol) DO UPDATE SET qty = p.qty + EXCLUDED.qty, updated_at = now()
), sp AS (
    INSERT INTO subscription_position AS p (subscription_id, symbol, qty, updated_at)
    SELECT u.sid, u.symbol, u.qty, now()
      FROM f, unnest($28::uuid[], $29::varchar[], $30::numeric[]) AS u(sid, symbol, qty)
    ON CONFLICT (subscription_id, symbol) DO UPDATE
        SET qty = p.qty + EXCLUDED.qty, updated_at = now()
), st AS (
    UPDATE subscription s SET status = u.status, status_reason = u.reason, updated_at = now()
      FROM f, unnest($31::uuid[], $32::varchar[], $33::varchar[]) AS u(sid, status, reason)
     WHERE s.id = u.sid AND s.status IN ('active', 'close_only')
)
SELECT id FROM f
"""


@dataclass
class OrderRows:
    """Column arrays of the follower_order rows of one fill (unnest wants columns)."""

    id: list[str] = field(default_factory=list)
    leg: list[int] = field(default_factory=list)
    follower_id: list[UUID] = field(default_factory=list)
    subscription_id: list[UUID] = field(default_factory=list)
    leader_equity_snapshot_id: list[int | None] = field(default_factory=list)
    follower_equity_snapshot_id: list[int | None] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    side: list[str] = field(default_factory=list)
    qty: list[Decimal] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    reduce_only: list[bool] = field(default_factory=list)
    limit_price: list[Decimal | None] = field(default_factory=list)
    time_in_force: list[str | None] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    skip_reason: list[str | None] = field(default_factory=list)
    payload: list[str] = field(default_factory=list)

    def columns(self) -> list[list[Any]]:
        return [
            self.id, self.leg, self.follower_id, self.subscription_id,
            self.leader_equity_snapshot_id, self.follower_equity_snapshot_id, self.symbol,
            self.side, self.qty, self.type, self.reduce_only, self.limit_price,
            self.time_in_force, self.status, self.skip_reason, self.payload,
        ]  # fmt: skip


@dataclass
class PositionMoves:
    """Signed position deltas per (subscription, follower symbol)."""

    subscription_id: list[UUID] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    delta: list[Decimal] = field(default_factory=list)


@dataclass
class StatusChanges:
    subscription_id: list[UUID] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    reason: list[str | None] = field(default_factory=list)


async def record_fill(
    conn: asyncpg.Connection,
    fill: Fill,
    kind: str,
    created_at: datetime,
    valid_until: datetime,
    orders: OrderRows,
    leader_delta: Decimal,
    moves: PositionMoves,
    changes: StatusChanges,
) -> int | None:
    """Record ``fill`` and what it caused; return the fill's row id, None for a duplicate.

    ``kind`` is "trade" for a leader fill, "sync" for copy_open_positions on subscribe.
    """
    fill_pk: int | None = await conn.fetchval(
        RECORD_FILL,
        fill.leader_id, fill.fill_id, fill.symbol, fill.side.value, fill.qty, fill.price,
        fill.event_at, fill.received_at, created_at, valid_until,
        *orders.columns(),
        leader_delta,
        moves.subscription_id, moves.symbol, moves.delta,
        changes.subscription_id, changes.status, changes.reason,
        kind,
        fill.fee, fill.fee_asset, fill.reduce_only, fill.liquidation,
        # Nothing to send (every order skipped): dispatched as it commits.
        None if "pending" in orders.status else created_at,
    )  # fmt: skip
    return fill_pk


LOAD_SUBSCRIPTIONS = """
SELECT s.id, s.follower_id, s.multiplier, s.status, s.sizing
  FROM subscription s
 WHERE s.leader_id = $1 AND s.status IN ('active', 'close_only')
"""
LOAD_LEADER_POSITIONS = "SELECT symbol, qty FROM leader_position WHERE leader_id = $1"
LOAD_SUBSCRIPTION_POSITIONS = """
SELECT p.subscription_id, p.symbol, p.qty
  FROM subscription_position p JOIN subscription s ON s.id = p.subscription_id
 WHERE s.leader_id = $1 AND s.status IN ('active', 'close_only')
"""
# The last price of each symbol the leader traded: marks for gross exposure after a restart.
LOAD_LAST_PRICES = """
SELECT DISTINCT ON (symbol) symbol, price
  FROM leader_fill WHERE leader_id = $1
 ORDER BY symbol, id DESC
"""
LOAD_INSTRUMENTS = "SELECT symbol, qty_step, min_qty, min_notional, price_step FROM instrument"
LOAD_INSTRUMENT = LOAD_INSTRUMENTS + " WHERE symbol = $1"


@dataclass(frozen=True, slots=True)
class BookRows:
    subscriptions: list[asyncpg.Record]
    leader_positions: list[asyncpg.Record]
    subscription_positions: list[asyncpg.Record]
    last_prices: list[asyncpg.Record]


async def load_book(conn: asyncpg.Connection, leader_id: UUID) -> BookRows:
    """A leader's live subscriptions, positions (its own and theirs) and last prices."""
    return BookRows(
        await conn.fetch(LOAD_SUBSCRIPTIONS, leader_id),
        await conn.fetch(LOAD_LEADER_POSITIONS, leader_id),
        await conn.fetch(LOAD_SUBSCRIPTION_POSITIONS, leader_id),
        await conn.fetch(LOAD_LAST_PRICES, leader_id),
    )


async def load_instruments(conn: asyncpg.Connection, symbol: str | None = None) -> list[Any]:
    if symbol is None:
        return list(await conn.fetch(LOAD_INSTRUMENTS))
    return list(await conn.fetch(LOAD_INSTRUMENT, symbol))


# Every order of these fills is in its stream. An executor may have reported first: its
# status stands (the order row is not touched at all).
MARK_DISPATCHED = (
    "UPDATE leader_fill SET dispatched_at = now()"
    " WHERE id = ANY($1::int8[]) AND dispatched_at IS NULL"
)


async def mark_dispatched(conn: asyncpg.Connection, fill_pks: list[int]) -> None:
    await conn.execute(MARK_DISPATCHED, fill_pks)
