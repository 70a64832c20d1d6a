"""Instruments and subscriptions: the settings sizing reads on every fill."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Instrument as InstrumentRow
from app.db.tables import Subscription


class InstrumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        symbol: str,
        qty_step: Decimal,
        min_qty: Decimal,
        min_notional: Decimal,
        price_step: Decimal | None = None,
    ) -> InstrumentRow:
        values = {
            "qty_step": qty_step,
            "min_qty": min_qty,
            "min_notional": min_notional,
            "price_step": price_step,
        }
        stmt = (
            pg_insert(InstrumentRow)
            .values(symbol=symbol, **values)
            .on_conflict_do_update(index_elements=["symbol"], set_=values)
            .returning(InstrumentRow)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def list(self) -> list[InstrumentRow]:
        stmt = select(InstrumentRow).order_by(InstrumentRow.symbol)
        return list((await self.session.execute(stmt)).scalars())


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        follower_id: UUID,
        leader_id: UUID,
        multiplier: Decimal,
        sizing: dict[str, Any] | None = None,
    ) -> Subscription:
        sub = Subscription(
            follower_id=follower_id,
            leader_id=leader_id,
            multiplier=multiplier,
            status="active",
            sizing=sizing or {},
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

    async def end_all_for_leader(self, leader_id: UUID) -> None:
        stmt = (
            update(Subscription)
            .where(Subscription.leader_id == leader_id, Subscription.status != "deleted")
            .values(status="deleted")
        )
        await self.session.execute(stmt)
