"""Read-only history for replays: a leader's past fills, equity over time, instrument rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import EquitySnapshot, Instrument, LeaderFill
from app.domain.model import EquityReading, Fill, Side


class HistoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def read_only(self) -> None:
        """Make the session's transaction read-only: a dry run cannot write, even by mistake."""
        await self.session.execute(text("SET TRANSACTION READ ONLY"))

    async def trade_fills(
        self, leader_id: UUID, since: datetime, until: datetime | None
    ) -> list[Fill]:
        """The leader's own trades (not ``sync`` events) with ``since <= event_at < until``,
        in the order the service processed them."""
        stmt = select(LeaderFill).where(
            LeaderFill.leader_id == leader_id,
            LeaderFill.kind == "trade",
            LeaderFill.event_at >= since,
        )
        if until is not None:
            stmt = stmt.where(LeaderFill.event_at < until)
        rows = (await self.session.execute(stmt.order_by(LeaderFill.id))).scalars()
        return [
            Fill(
                leader_id=row.leader_id,
                fill_id=row.fill_id,
                symbol=row.symbol,
                side=Side(row.side),
                qty=row.qty,
                price=row.price,
                event_at=row.event_at,
                received_at=row.received_at,
            )
            for row in rows
        ]

    async def leader_positions_at(self, leader_id: UUID, at: datetime) -> dict[str, Decimal]:
        """The leader's signed position per symbol from its trades before ``at``."""
        signed = case((LeaderFill.side == "buy", LeaderFill.qty), else_=-LeaderFill.qty)
        stmt = (
            select(LeaderFill.symbol, func.sum(signed))
            .where(
                LeaderFill.leader_id == leader_id,
                LeaderFill.kind == "trade",
                LeaderFill.event_at < at,
            )
            .group_by(LeaderFill.symbol)
        )
        return {symbol: qty for symbol, qty in (await self.session.execute(stmt)).all() if qty}

    async def equity_history(
        self, *, leader_id: UUID | None = None, follower_id: UUID | None = None
    ) -> list[EquityReading]:
        """Every equity snapshot of one account, oldest first (ties: the later row last)."""
        if (leader_id is None) == (follower_id is None):
            raise ValueError("account: give exactly one of leader_id and follower_id")
        column = EquitySnapshot.leader_id if leader_id else EquitySnapshot.follower_id
        stmt = (
            select(EquitySnapshot)
            .where(column == (leader_id or follower_id))
            .order_by(EquitySnapshot.as_of, EquitySnapshot.id)
        )
        rows = (await self.session.execute(stmt)).scalars()
        return [EquityReading(row.id, row.equity, row.as_of) for row in rows]

    async def instruments(self) -> list[Instrument]:
        return list((await self.session.execute(select(Instrument))).scalars())
