"""Positions as sizing tracks them: the leader's, and each subscription's in follower symbols."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import subscription_positions

# For each live subscription: every symbol either side holds, with the leader's position in
# the leader symbol the follower symbol maps from (sizing.symbols.map), and the actual
# position: the venue's, for a follower whose account positions were read (one per account
# and symbol, whatever the subscriptions), else what executors reported as filled.
_FOLLOWER_POSITIONS = text(
    """
    WITH subs AS (
        SELECT id, leader_id, multiplier, coalesce(sizing -> 'symbols' -> 'map', '{}') AS map
          FROM subscription
         WHERE follower_id = :follower_id AND status <> 'deleted'
    ), pairs AS (
        SELECT s.id, s.leader_id, s.multiplier, lp.symbol AS leader_symbol,
               coalesce(s.map ->> lp.symbol, lp.symbol) AS symbol
          FROM subs s JOIN leader_position lp ON lp.leader_id = s.leader_id
        UNION
        SELECT s.id, s.leader_id, s.multiplier,
               coalesce((SELECT key FROM jsonb_each_text(s.map) WHERE value = sp.symbol LIMIT 1),
                        sp.symbol),
               sp.symbol
          FROM subs s JOIN subscription_position sp ON sp.subscription_id = s.id
    )
    SELECT p.id AS subscription_id, p.leader_id, p.multiplier, p.symbol, p.leader_symbol,
           coalesce(sp.qty, 0) AS qty, coalesce(lp.qty, 0) AS leader_qty,
           CASE WHEN fa.positions_at IS NOT NULL THEN coalesce(vp.qty, 0) ELSE fp.qty END
               AS actual,
           CASE WHEN fa.positions_at IS NOT NULL THEN 'venue'
                WHEN fp.qty IS NOT NULL THEN 'reports' END AS actual_source,
           coalesce(fd.flagged, false) AS drift_flagged, fd.fraction AS drift_fraction,
           coalesce(fd.adopted, 0) AS adopted
      FROM pairs p
      LEFT JOIN subscription_position sp ON sp.subscription_id = p.id AND sp.symbol = p.symbol
      LEFT JOIN leader_position lp ON lp.leader_id = p.leader_id AND lp.symbol = p.leader_symbol
      LEFT JOIN follower_position fp
             ON fp.follower_id = :follower_id AND fp.symbol = p.symbol
      LEFT JOIN follower_account fa ON fa.follower_id = :follower_id
      LEFT JOIN venue_position vp ON vp.follower_id = :follower_id AND vp.symbol = p.symbol
      LEFT JOIN follower_drift fd ON fd.follower_id = :follower_id AND fd.symbol = p.symbol
     ORDER BY p.symbol, p.id
    """
)


@dataclass(frozen=True, slots=True)
class PositionRow:
    subscription_id: UUID
    leader_id: UUID
    multiplier: Decimal
    symbol: str
    leader_symbol: str
    qty: Decimal
    leader_qty: Decimal
    actual: Decimal | None
    actual_source: str | None
    # The drift check's (app.venues.drift), per follower and symbol.
    drift_flagged: bool
    drift_fraction: Decimal | None
    adopted: Decimal


class PositionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_follower(self, follower_id: UUID) -> list[PositionRow]:
        rows = await self.session.execute(_FOLLOWER_POSITIONS, {"follower_id": follower_id})
        return [PositionRow(*row) for row in rows]

    async def for_leader(self, leader_id: UUID) -> list[tuple[str, Decimal]]:
        rows = await self.session.execute(
            text("SELECT symbol, qty FROM leader_position WHERE leader_id = :l ORDER BY symbol"),
            {"l": leader_id},
        )
        return [(r.symbol, r.qty) for r in rows]

    async def correct_subscription(
        self, subscription_id: UUID, symbol: str, delta: Decimal, leader_id: UUID
    ) -> None:
        """Move the tracked position by what an order did not fill, and tell sizing caches."""
        # The leader's row first, as the fill statement takes it: the same lock order on both
        # paths, so neither waits for the other in a cycle. The new sequence makes a fill
        # planned from the old position record nothing and plan again.
        await self.session.execute(
            text("UPDATE leader SET book_seq = book_seq + 1 WHERE id = :l"), {"l": leader_id}
        )
        await subscription_positions.correct(self.session, subscription_id, symbol, delta)
        await self.session.execute(
            text("SELECT pg_notify('copytrade_changes', :payload)"),
            {"payload": f'{{"kind": "leader", "id": "{leader_id}"}}'},
        )
