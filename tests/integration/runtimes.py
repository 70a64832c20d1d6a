"""Arrangements for tests that drive a Runtime in-process (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.db.repositories.accounts import FollowerRepository, LeaderRepository
from app.db.repositories.trading import SubscriptionRepository
from app.domain.model import Fill, Side
from app.runtime import Runtime


async def seed(runtime: Runtime, followers: int) -> tuple[UUID, list[UUID]]:
    """A push leader with equity 100000 and ``followers`` followers with 10000 each, all
    subscribed at multiplier 1: a leader fill of qty q gives each an order of q / 10."""
    async with runtime.unit_of_work() as uow:
        leader = await LeaderRepository(uow.session).add("L", "push", None, None)
        await runtime.pipeline.record_equity(uow, Decimal(100000), None, leader_id=leader.id)
        ids = []
        for n in range(followers):
            follower = await FollowerRepository(uow.session).add(f"F{n}", f"hash-{n}")
            await runtime.pipeline.record_equity(uow, Decimal(10000), None, follower_id=follower.id)
            await SubscriptionRepository(uow.session).add(follower.id, leader.id, Decimal(1))
            ids.append(follower.id)
        await uow.commit()
    return leader.id, ids


def fill(leader_id: UUID, fill_id: str, side: Side = Side.BUY, qty: str = "2") -> Fill:
    now = datetime.now(UTC)
    return Fill(leader_id, fill_id, "BTCUSDT", side, Decimal(qty), Decimal(50000), now, now)
