"""Read-only queries of the dashboard: pages of accounts, their subscriptions, recent orders,
and exposures, each for a bounded set of followers (a page), never the whole table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Follower, FollowerOrder, Leader, LeaderFill, Subscription

# One lateral probe of ix_follower_order_follower_newest per follower of the page: there is no
# index on follower_order by time alone, and a sort of the whole table would be no dashboard.
_RECENT_ORDER_IDS = text(
    """
    SELECT o.id
      FROM unnest(CAST(:follower_ids AS uuid[])) AS f(id)
      CROSS JOIN LATERAL (
            SELECT id, created_at FROM follower_order
             WHERE follower_id = f.id
               AND (CAST(:symbol AS text) IS NULL OR symbol = CAST(:symbol AS text))
               AND (CAST(:statuses AS text[]) IS NULL
                    OR status = ANY(CAST(:statuses AS text[])))
               AND (CAST(:before_at AS timestamptz) IS NULL
                    OR created_at < CAST(:before_at AS timestamptz)
                    OR (created_at = CAST(:before_at AS timestamptz)
                        AND id > CAST(:before_id AS text)))
             ORDER BY created_at DESC, id
             LIMIT :limit) o
     ORDER BY o.created_at DESC, o.id
     LIMIT :limit
    """
)

# For each live subscription of the followers: every symbol either side holds (as in
# PositionRepository.for_follower, with sizing.symbols.map), and the leader's last fill price in
# the leader symbol as the mark that turns positions into exposures.
_EXPOSURES = text(
    """
    WITH subs AS (
        SELECT id, follower_id, leader_id, multiplier, status,
               coalesce(sizing -> 'symbols' -> 'map', '{}') AS map
          FROM subscription
         WHERE follower_id = ANY(CAST(:follower_ids AS uuid[])) AND status <> 'deleted'
    ), pairs AS (
        SELECT s.id, s.follower_id, s.leader_id, s.multiplier, s.status,
               lp.symbol AS leader_symbol, coalesce(s.map ->> lp.symbol, lp.symbol) AS symbol
          FROM subs s JOIN leader_position lp ON lp.leader_id = s.leader_id
        UNION
        SELECT s.id, s.follower_id, s.leader_id, s.multiplier, s.status,
               coalesce((SELECT key FROM jsonb_each_text(s.map) WHERE value = sp.symbol LIMIT 1),
                        sp.symbol),
               sp.symbol
          FROM subs s JOIN subscription_position sp ON sp.subscription_id = s.id
    )
    SELECT p.id AS subscription_id, p.follower_id, p.leader_id, p.multiplier, p.status,
           p.symbol, p.leader_symbol, coalesce(sp.qty, 0) AS qty,
           coalesce(lp.qty, 0) AS leader_qty, mark.price AS mark_price
      FROM pairs p
      LEFT JOIN subscription_position sp ON sp.subscription_id = p.id AND sp.symbol = p.symbol
      LEFT JOIN leader_position lp ON lp.leader_id = p.leader_id AND lp.symbol = p.leader_symbol
      -- Newest first along the primary key: an active symbol is found within its recent fills.
      LEFT JOIN LATERAL (
            SELECT price FROM leader_fill
             WHERE leader_id = p.leader_id AND symbol = p.leader_symbol
             ORDER BY id DESC LIMIT 1) mark ON true
     ORDER BY p.follower_id, p.symbol, p.id
    """
)


@dataclass(frozen=True, slots=True)
class ExposureRow:
    subscription_id: UUID
    follower_id: UUID
    leader_id: UUID
    multiplier: Decimal
    status: str
    symbol: str
    leader_symbol: str
    qty: Decimal
    leader_qty: Decimal
    mark_price: Decimal | None


class DashboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def followers_page(self, limit: int, offset: int) -> list[Follower]:
        stmt = (
            select(Follower).order_by(Follower.created_at, Follower.id).limit(limit).offset(offset)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def subscriptions_of(self, follower_ids: Sequence[UUID]) -> list[Subscription]:
        stmt = (
            select(Subscription)
            .where(Subscription.follower_id.in_(follower_ids), Subscription.status != "deleted")
            .order_by(Subscription.created_at, Subscription.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def push_token_hashes(self, leader_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The current push token hash of each push leader among these (for its socket count)."""
        stmt = select(Leader.id, Leader.push_token_hash).where(
            Leader.id.in_(leader_ids), Leader.push_token_hash.is_not(None)
        )
        return {
            leader_id: token_hash
            for leader_id, token_hash in (await self.session.execute(stmt)).all()
            if token_hash is not None
        }

    async def live_subscriber_counts(self, leader_ids: Sequence[UUID]) -> dict[UUID, int]:
        stmt = (
            select(Subscription.leader_id, func.count())
            .where(Subscription.leader_id.in_(leader_ids), Subscription.status != "deleted")
            .group_by(Subscription.leader_id)
        )
        return {leader_id: count for leader_id, count in (await self.session.execute(stmt)).all()}

    async def recent_orders(
        self,
        follower_ids: Sequence[UUID],
        limit: int,
        *,
        symbol: str | None = None,
        statuses: Sequence[str] | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[tuple[FollowerOrder, LeaderFill]]:
        """The newest ``limit`` orders of these followers together, newest first; only those
        in ``symbol`` and with a stored status in ``statuses`` when given, and only those after
        ``before`` (the created_at and id of the last order of the previous page)."""
        if not follower_ids:
            return []
        params = {
            "follower_ids": list(follower_ids),
            "limit": limit,
            "symbol": symbol,
            "statuses": list(statuses) if statuses is not None else None,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else None,
        }
        ids = (await self.session.execute(_RECENT_ORDER_IDS, params)).scalars()
        stmt = (
            select(FollowerOrder, LeaderFill)
            .join(LeaderFill, LeaderFill.id == FollowerOrder.fill_pk)
            .where(FollowerOrder.id.in_(list(ids)))
            .order_by(FollowerOrder.created_at.desc(), FollowerOrder.id)
        )
        return [(order, fill) for order, fill in (await self.session.execute(stmt)).all()]

    async def exposures(self, follower_ids: Sequence[UUID]) -> list[ExposureRow]:
        if not follower_ids:
            return []
        rows = await self.session.execute(_EXPOSURES, {"follower_ids": list(follower_ids)})
        return [ExposureRow(*row) for row in rows]
