"""Instruments and subscriptions: the settings sizing reads on every fill."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Instrument as InstrumentRow
from app.db.tables import Subscription
from app.domain.model import Instrument


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    id: UUID
    follower_id: UUID
    multiplier: Decimal


class InstrumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self, symbol: str, qty_step: Decimal, min_qty: Decimal, min_notional: Decimal
    ) -> InstrumentRow:
        values = {"qty_step": qty_step, "min_qty": min_qty, "min_notional": min_notional}
        stmt = (
            pg_insert(InstrumentRow)
            .values(symbol=symbol, **values)
            .on_conflict_do_update(index_elements=["symbol"], set_=values)
            .returning(InstrumentRow)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def get(self, symbol: str) -> Instrument:
        """Return the lot rules of ``symbol``, or the defaults when it has no row."""
        row = await self.session.get(InstrumentRow, symbol)
        if row is None:
            return Instrument(symbol=symbol)
        return Instrument(symbol, row.qty_step, row.min_qty, row.min_notional)


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, follower_id: UUID, leader_id: UUID, multiplier: Decimal) -> Subscription:
        sub = Subscription(
            follower_id=follower_id, leader_id=leader_id, multiplier=multiplier, status="active"
        )
        self.session.add(sub)
        await self.session.flush()
        await self.session.refresh(sub)
        return sub

    async def live_for_pair(self, follower_id: UUID, leader_id: UUID) -> Subscription | None:
        stmt = select(Subscription).where(
            Subscription.follower_id == follower_id,
            Subscription.leader_id == leader_id,
            Subscription.status != "deleted",
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, follower_id: UUID, subscription_id: UUID) -> Subscription | None:
        stmt = select(Subscription).where(
            Subscription.id == subscription_id,
            Subscription.follower_id == follower_id,
            Subscription.status != "deleted",
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_for_follower(self, follower_id: UUID) -> list[Subscription]:
        stmt = (
            select(Subscription)
            .where(Subscription.follower_id == follower_id, Subscription.status != "deleted")
            .order_by(Subscription.created_at, Subscription.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def active_for_leader(self, leader_id: UUID) -> list[ActiveSubscription]:
        stmt = select(Subscription.id, Subscription.follower_id, Subscription.multiplier).where(
            Subscription.leader_id == leader_id, Subscription.status == "active"
        )
        rows = (await self.session.execute(stmt)).all()
        return [ActiveSubscription(r.id, r.follower_id, r.multiplier) for r in rows]

    async def end_all_for_leader(self, leader_id: UUID) -> None:
        stmt = (
            update(Subscription)
            .where(Subscription.leader_id == leader_id, Subscription.status != "deleted")
            .values(status="deleted")
        )
        await self.session.execute(stmt)
