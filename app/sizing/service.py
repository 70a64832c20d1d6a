"""Size one leader fill for every active subscription, inside the caller's unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.orders import FillRepository, OrderRepository
from app.db.repositories.trading import InstrumentRepository, SubscriptionRepository
from app.dispatch.messages import encode_order, order_row
from app.domain.ids import order_id
from app.domain.model import Fill, MirrorOrder
from app.domain.sizing import size_proportional
from app.sizing.equity_cache import EquityCache


@dataclass(frozen=True, slots=True)
class SizedFill:
    """What one fill produced: nothing if it was a duplicate, else its orders and payloads."""

    duplicate: bool
    orders: list[tuple[MirrorOrder, str]] = field(default_factory=list)


class SizingService:
    def __init__(self, equity: EquityCache, order_ttl_s: float) -> None:
        self.equity = equity
        self.order_ttl = timedelta(seconds=order_ttl_s)

    async def size_fill(self, session: AsyncSession, fill: Fill) -> SizedFill:
        """Record ``fill`` and write its orders (flush only; the caller commits).

        A fill id already recorded for the leader produces nothing: the unique key on
        (leader_id, fill_id) is the one place duplicates are decided.
        """
        fill_pk = await FillRepository(session).record(fill)
        if fill_pk is None:
            return SizedFill(duplicate=True)

        subscriptions = await SubscriptionRepository(session).active_for_leader(fill.leader_id)
        if not subscriptions:
            return SizedFill(duplicate=False)
        instrument = await InstrumentRepository(session).get(fill.symbol)
        leader_equity = self.equity.leader(fill.leader_id)
        now = datetime.now(UTC)
        # From the fill's own time: a fill that reaches us late has less time left, not more.
        valid_until = min(fill.event_at, now) + self.order_ttl

        produced: list[tuple[MirrorOrder, str]] = []
        for sub in subscriptions:
            sizing = size_proportional(
                fill,
                leader_equity,
                self.equity.follower(sub.follower_id),
                sub.multiplier,
                instrument,
            )
            order = MirrorOrder(
                order_id=order_id(fill.leader_id, fill.fill_id, sub.id),
                follower_id=sub.follower_id,
                leader_id=fill.leader_id,
                subscription_id=sub.id,
                fill=fill,
                symbol=fill.symbol,
                side=fill.side,
                qty=sizing.qty,
                reduce_only=False,
                created_at=now,
                valid_until=valid_until,
                sizing=sizing,
            )
            produced.append((order, encode_order(order)))
        await OrderRepository(session).add_many(
            [order_row(order, fill_pk, payload) for order, payload in produced]
        )
        return SizedFill(duplicate=False, orders=produced)
