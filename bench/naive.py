"""The naive baseline: the obvious pipeline, measured on the same data in the same run.

A query for each follower's equity, one transaction per order, one Redis round trip per order.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from app.dispatch.keys import order_stream
from app.domain.decimals import fmt, round_down
from app.domain.ids import order_id

STEP = Decimal("0.00000001")
NEWEST_EQUITY = (
    "SELECT id, equity FROM equity_snapshot WHERE {col} = $1 ORDER BY as_of DESC, id DESC LIMIT 1"
)


class NaivePipeline:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def handle_fill(
        self, leader_id: uuid.UUID, fill_id: str, side: str, qty: Decimal, price: Decimal
    ) -> int:
        """Process one fill; return the number of orders enqueued (-1: a duplicate)."""
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            fill_pk = await conn.fetchval(
                "INSERT INTO leader_fill (leader_id, fill_id, symbol, side, qty, price, event_at,"
                " received_at, valid_until) VALUES ($1, $2, 'BTCUSDT', $3, $4, $5, $6, $6, $7)"
                " ON CONFLICT DO NOTHING RETURNING id",
                leader_id, fill_id, side, qty, price, now, now + timedelta(seconds=30),
            )  # fmt: skip
            if fill_pk is None:
                return -1
            leader = await conn.fetchrow(NEWEST_EQUITY.format(col="leader_id"), leader_id)
            subs = await conn.fetch(
                "SELECT id, follower_id, multiplier FROM subscription"
                " WHERE leader_id = $1 AND status = 'active'",
                leader_id,
            )
            sent = 0
            for sub in subs:
                follower = await conn.fetchrow(
                    NEWEST_EQUITY.format(col="follower_id"), sub["follower_id"]
                )
                raw = qty * follower["equity"] * sub["multiplier"] / leader["equity"]
                size = round_down(raw, STEP)
                oid = order_id(leader_id, fill_id, sub["id"])
                payload = json.dumps(
                    {
                        "order_id": oid,
                        "follower_id": str(sub["follower_id"]),
                        "leader_fill_id": fill_id,
                        "symbol": "BTCUSDT",
                        "side": side,
                        "qty": fmt(size),
                        "created_at": now.isoformat(),
                    }
                )
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO follower_order (id, fill_pk, leg, follower_id,"
                        " subscription_id, follower_equity_snapshot_id, symbol, side, qty,"
                        " type, reduce_only, status, created_at, mode, follower_equity,"
                        " multiplier, effect, follower_position_before,"
                        " follower_position_after, raw_qty, residue, qty_step)"
                        " VALUES ($1, $2, 0, $3, $4, $5, 'BTCUSDT', $6, $7, 'market',"
                        " false, 'dispatched', $8, 'target', $9, $10, 'open', 0, $7, $11,"
                        " $11::numeric - $7::numeric, $12)",
                        oid, fill_pk, sub["follower_id"], sub["id"], follower["id"], side, size,
                        now, follower["equity"], sub["multiplier"], raw, STEP,
                    )  # fmt: skip
                await self.redis.xadd(order_stream(sub["follower_id"]), {"order": payload})
                sent += 1
            return sent
