"""Follower drift: the venue's positions and the orders in flight it is compared after, what
a follower holds on its own (adopt), the last measurement, and the resync limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import (
    FollowerAccount,
    FollowerDrift,
    Subscription,
    SubscriptionPosition,
    VenuePosition,
)
from app.domain.lifecycle import TERMINAL


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: UUID
    leader_id: UUID
    multiplier: Decimal
    status: str
    sizing: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InFlight:
    """A symbol's orders: how many are still open, and the newest report's time."""

    open: int
    reported_at: datetime | None


# Orders of the last day per symbol: those still open (an order past its validity by more than
# a minute no longer counts: its executor reports it expired, or never will), and when the
# newest changed. Served by ix_follower_order_follower_newest.
_IN_FLIGHT = text(
    f"""
    SELECT o.symbol,
           count(*) FILTER (WHERE o.status NOT IN ({", ".join(f"'{s}'" for s in sorted(TERMINAL))})
                              AND f.valid_until > now() - interval '1 minute') AS open,
           max(o.updated_at) AS reported_at
      FROM follower_order o JOIN leader_fill f ON f.id = o.fill_pk
     WHERE o.follower_id = :f AND o.created_at > now() - interval '1 day'
     GROUP BY o.symbol
    """
)
# One resync per follower and symbol per interval, whichever instance asks: the row's
# resynced_at moves only when the interval has passed, and the winner gets the time back.
_CLAIM = text(
    """
    INSERT INTO follower_drift AS d (follower_id, symbol, resynced_at)
    VALUES (:f, :symbol, now())
    ON CONFLICT (follower_id, symbol) DO UPDATE SET resynced_at = now()
     WHERE d.resynced_at IS NULL OR d.resynced_at <= now() - make_interval(secs => :interval)
    RETURNING resynced_at
    """
)


class DriftRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def venue(
        self, follower_id: UUID
    ) -> tuple[datetime | None, dict[str, tuple[Decimal, datetime]]]:
        """When the whole account was last read (None: never), and each symbol's position
        with the time it was read."""
        positions_at = (
            await self.session.execute(
                select(FollowerAccount.positions_at).where(
                    FollowerAccount.follower_id == follower_id
                )
            )
        ).scalar_one_or_none()
        rows = await self.session.execute(
            select(VenuePosition.symbol, VenuePosition.qty, VenuePosition.read_at).where(
                VenuePosition.follower_id == follower_id
            )
        )
        return positions_at, {symbol: (qty, at) for symbol, qty, at in rows.all()}

    async def subscriptions(self, follower_id: UUID) -> list[SubscriptionRow]:
        """The follower's live subscriptions, oldest first."""
        rows = await self.session.execute(
            select(Subscription)
            .where(Subscription.follower_id == follower_id, Subscription.status != "deleted")
            .order_by(Subscription.created_at, Subscription.id)
        )
        return [
            SubscriptionRow(s.id, s.leader_id, s.multiplier, s.status, s.sizing)
            for s in rows.scalars()
        ]

    async def paused_positions(self, follower_id: UUID) -> dict[str, Decimal]:
        """Per follower symbol, the tracked positions of the follower's paused subscriptions:
        still held at the venue, but no book sizing loads has them."""
        rows = await self.session.execute(
            select(SubscriptionPosition.symbol, func.sum(SubscriptionPosition.qty))
            .join(Subscription, Subscription.id == SubscriptionPosition.subscription_id)
            .where(Subscription.follower_id == follower_id, Subscription.status == "paused")
            .group_by(SubscriptionPosition.symbol)
        )
        return {symbol: qty for symbol, qty in rows.all() if qty}

    async def in_flight(self, follower_id: UUID) -> dict[str, InFlight]:
        rows = await self.session.execute(_IN_FLIGHT, {"f": follower_id})
        return {row.symbol: InFlight(row.open, row.reported_at) for row in rows}

    async def states(self, follower_id: UUID) -> dict[str, FollowerDrift]:
        rows = await self.session.execute(
            select(FollowerDrift).where(FollowerDrift.follower_id == follower_id)
        )
        return {row.symbol: row for row in rows.scalars()}

    async def record(
        self,
        follower_id: UUID,
        symbol: str,
        adopted: Decimal,
        drift: Decimal | None,
        fraction: Decimal | None,
        flagged: bool,
    ) -> None:
        """Store a measurement, and ``adopted`` (what the follower holds on its own)."""
        values = {
            "follower_id": follower_id,
            "symbol": symbol,
            "adopted": adopted,
            "drift": drift,
            "fraction": fraction,
            "flagged": flagged,
            "checked_at": text("now()"),
        }
        stmt = pg_insert(FollowerDrift).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["follower_id", "symbol"],
            set_={k: stmt.excluded[k] for k in values if k not in ("follower_id", "symbol")},
        )
        await self.session.execute(stmt)

    async def claim_resync(
        self, follower_id: UUID, symbol: str, min_interval_s: float
    ) -> datetime | None:
        """Take the symbol's resync slot; None when one was taken less than
        ``min_interval_s`` ago (here or on another instance)."""
        row = (
            await self.session.execute(
                _CLAIM, {"f": follower_id, "symbol": symbol, "interval": min_interval_s}
            )
        ).first()
        return None if row is None else row[0]
