"""Leader fills and follower orders: the record of everything that happened, and the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.fills import MARK_DISPATCHED
from app.db.tables import FollowerOrder, FollowerPosition, LeaderFill, OrderEvent


class OutboxRow(NamedTuple):
    """An order to (re)send, as its row and its fill's row hold it."""

    order_id: str
    follower_id: UUID
    subscription_id: UUID
    leader_id: UUID
    fill_id: str
    leader_price: Decimal
    symbol: str
    side: str
    qty: Decimal
    type: str
    reduce_only: bool
    limit_price: Decimal | None
    time_in_force: str | None
    valid_until: datetime


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def mark_dispatched(self, fill_pks: Sequence[int]) -> None:
        if fill_pks:
            # The hot path's statement, in this session's transaction (asyncpg's $n style).
            conn = await self.session.connection()
            await conn.exec_driver_sql(MARK_DISPATCHED, (list(fill_pks),))

    async def undispatched(
        self, older_than_s: float, limit: int
    ) -> tuple[list[int], list[OutboxRow]]:
        """Committed fills whose orders are not all confirmed in Redis, oldest first: their
        ids, and their orders still without an executor report, with what their order
        message is made of.

        The fills stay locked until the transaction ends; ``SKIP LOCKED`` lets several relays
        share the backlog without sending a fill twice at once.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        fills = (
            select(LeaderFill.id)
            .where(LeaderFill.dispatched_at.is_(None), LeaderFill.created_at <= cutoff)
            .order_by(LeaderFill.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        fill_pks = list((await self.session.execute(fills)).scalars())
        if not fill_pks:
            return [], []
        # Plain rows, not ORM objects: a fill may have 10,000 orders, and the relay only
        # reads them.
        orders = (
            select(
                FollowerOrder.id,
                FollowerOrder.follower_id,
                FollowerOrder.subscription_id,
                LeaderFill.leader_id,
                LeaderFill.fill_id,
                LeaderFill.price,
                FollowerOrder.symbol,
                FollowerOrder.side,
                FollowerOrder.qty,
                FollowerOrder.type,
                FollowerOrder.reduce_only,
                FollowerOrder.limit_price,
                FollowerOrder.time_in_force,
                # NULL only on fills recorded before it was stored on the fill's row: the
                # API's answer falls back the same way.
                func.coalesce(LeaderFill.valid_until, FollowerOrder.created_at),
            )
            .join(LeaderFill, LeaderFill.id == FollowerOrder.fill_pk)
            .where(FollowerOrder.fill_pk.in_(fill_pks), FollowerOrder.status == "pending")
            .order_by(FollowerOrder.fill_pk, FollowerOrder.id)
        )
        rows = (await self.session.execute(orders)).all()
        return fill_pks, [OutboxRow._make(row) for row in rows]

    async def get(
        self, follower_id: UUID, order_id: str
    ) -> tuple[FollowerOrder, LeaderFill] | None:
        stmt = (
            select(FollowerOrder, LeaderFill)
            .join(LeaderFill, LeaderFill.id == FollowerOrder.fill_pk)
            .where(FollowerOrder.id == order_id, FollowerOrder.follower_id == follower_id)
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row else None

    async def for_follower(
        self, follower_id: UUID, limit: int
    ) -> list[tuple[FollowerOrder, LeaderFill]]:
        stmt = (
            select(FollowerOrder, LeaderFill)
            .join(LeaderFill, LeaderFill.id == FollowerOrder.fill_pk)
            .where(FollowerOrder.follower_id == follower_id)
            .order_by(FollowerOrder.created_at.desc(), FollowerOrder.id)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [(r[0], r[1]) for r in rows]


def _position_upsert() -> Insert:
    stmt = pg_insert(FollowerPosition).values(
        follower_id=bindparam("follower_id"), symbol=bindparam("symbol"), qty=bindparam("qty")
    )
    return stmt.on_conflict_do_update(
        index_elements=["follower_id", "symbol"],
        set_={"qty": FollowerPosition.qty + stmt.excluded.qty, "updated_at": func.now()},
    )


# Built once, not per report: building it (its ``excluded`` columns) cost more Python than
# the rest of applying a report.
_ADD_POSITION = _position_upsert()


class LifecycleRepository:
    """Executor reports: order status, fill quantity, events and the follower's position."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(
        self, follower_id: UUID, order_id: str
    ) -> tuple[FollowerOrder, UUID, str] | None:
        """The order, locked, with its fill's leader and fill id."""
        stmt = (
            select(FollowerOrder, LeaderFill.leader_id, LeaderFill.fill_id)
            .join(LeaderFill, LeaderFill.id == FollowerOrder.fill_pk)
            .where(FollowerOrder.id == order_id, FollowerOrder.follower_id == follower_id)
            .with_for_update(of=FollowerOrder)
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1], row[2]) if row else None

    async def record(
        self,
        order: FollowerOrder,
        status: str,
        filled_qty: Decimal,
        avg_price: Decimal | None,
        reason: str | None,
        position_delta: Decimal,
    ) -> OrderEvent:
        order.status = status
        order.filled_qty = filled_qty
        order.avg_price = avg_price
        order.status_reason = reason
        order.updated_at = datetime.now(UTC)
        event = OrderEvent(
            order_id=order.id,
            status=status,
            filled_qty=filled_qty,
            avg_price=avg_price,
            reason=reason,
        )
        self.session.add(event)
        if position_delta:
            await self.session.execute(
                _ADD_POSITION,
                {"follower_id": order.follower_id, "symbol": order.symbol, "qty": position_delta},
            )
        await self.session.flush()
        return event

    async def events(self, order_id: str) -> list[OrderEvent]:
        stmt = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        return list((await self.session.execute(stmt)).scalars())

    async def positions(self, follower_id: UUID) -> list[FollowerPosition]:
        stmt = (
            select(FollowerPosition)
            .where(FollowerPosition.follower_id == follower_id)
            .order_by(FollowerPosition.symbol)
        )
        return list((await self.session.execute(stmt)).scalars())
