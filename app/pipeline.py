"""The fill pipeline: record and size in one transaction, then dispatch after the commit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.equity import EquityRepository
from app.db.repositories.orders import OrderRepository
from app.db.session import UnitOfWork
from app.dispatch.enqueue import Enqueuer, OutboxItem
from app.domain.model import EquityReading, Fill, MirrorOrder
from app.metrics import DISPATCH_ERRORS, FILL_LATENCY, FILLS, ORDERS
from app.sizing.equity_cache import EquityCache
from app.sizing.service import SizingService

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FillResult:
    status: str  # "accepted" | "duplicate"
    orders: tuple[MirrorOrder, ...] = ()


class Pipeline:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        equity: EquityCache,
        enqueuer: Enqueuer,
        order_ttl_s: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.equity = equity
        self._sizing = SizingService(equity, order_ttl_s)
        self._enqueuer = enqueuer

    async def handle_fill(self, fill: Fill) -> FillResult:
        """Process one leader fill. Returns once the fill and its orders are committed.

        Orders are pushed to Redis right after the commit; if that fails they stay pending
        in Postgres and the outbox relay sends them, so an accepted fill is never lost.
        """
        started = time.perf_counter()
        async with UnitOfWork(self._sessionmaker) as uow:
            sized = await self._sizing.size_fill(uow.session, fill)
            if sized.duplicate:
                await uow.rollback()
                FILLS.labels(status="duplicate").inc()
                log.info("fill_duplicate", leader_id=str(fill.leader_id), fill_id=fill.fill_id)
                return FillResult("duplicate")
            await uow.commit()
        FILLS.labels(status="accepted").inc()
        for order, _ in sized.orders:
            reason = order.sizing.skip_reason
            ORDERS.labels(status=order.status.value, reason=reason.value if reason else "").inc()
        await self.dispatch(
            [
                OutboxItem(
                    order.order_id,
                    order.follower_id,
                    payload,
                    order.sizing.skip_reason.value if order.sizing.skip_reason else None,
                )
                for order, payload in sized.orders
            ]
        )
        FILL_LATENCY.observe(time.perf_counter() - started)
        log.info(
            "fill_accepted",
            leader_id=str(fill.leader_id),
            fill_id=fill.fill_id,
            orders=[o.order_id for o, _ in sized.orders],
        )
        return FillResult("accepted", tuple(o for o, _ in sized.orders))

    async def dispatch(self, items: list[OutboxItem]) -> None:
        """Enqueue committed orders and mark them dispatched; failures are left to the relay."""
        if not items:
            return
        try:
            confirmed = await self._enqueuer.enqueue(items)
            async with UnitOfWork(self._sessionmaker) as uow:
                await OrderRepository(uow.session).mark_dispatched(confirmed)
                await uow.commit()
        except Exception as exc:
            DISPATCH_ERRORS.inc()
            log.warning("dispatch_deferred_to_relay", error=repr(exc), orders=len(items))

    async def record_equity(
        self,
        uow: UnitOfWork,
        equity: Decimal,
        as_of: datetime | None,
        *,
        leader_id: UUID | None = None,
        follower_id: UUID | None = None,
    ) -> EquityReading:
        """Store an equity snapshot in ``uow``; the cache takes it once ``uow`` commits."""
        row = await EquityRepository(uow.session).add(
            equity, as_of, leader_id=leader_id, follower_id=follower_id
        )
        reading = EquityReading(row.id, row.equity, row.as_of)

        async def _observe() -> None:
            self.equity.observe(leader_id, follower_id, reading)

        uow.after_commit(_observe)
        return reading

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self._sessionmaker)
