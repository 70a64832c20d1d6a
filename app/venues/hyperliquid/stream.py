"""The account's private stream: ``orderUpdates`` and ``userFills`` merged into order events.

``orderUpdates`` says where an order is (``sz`` left of ``origSz``, its status) but not at
what price it filled; ``userFills`` gives each execution's price and size but names the order
only by ``oid``. ``OrderBook`` keeps both per order and emits a ``VenueOrder`` each time the
merged view moves on, and only once the fills seen account for the filled quantity, so every
event that carries a quantity also carries its average price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from app.venues.execution import OrderState, VenueOrder
from app.venues.hyperliquid.rules import status_outcome
from app.venues.hyperliquid.schemas import OrderWithStatus, UserFill

# Orders remembered per account; the oldest are forgotten first (an IOC ends within a block).
MAX_TRACKED = 10_000


@dataclass
class _Order:
    cloid: str | None = None
    size: Decimal | None = None
    remaining: Decimal | None = None
    status: str | None = None
    fills: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)  # tid: (sz, px)
    sent: tuple[OrderState, Decimal] | None = None


class OrderBook:
    """Our orders on one account, as the private stream tells them."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._orders: dict[int, _Order] = {}
        self._max = max_tracked

    def _get(self, oid: int) -> _Order:
        order = self._orders.get(oid)
        if order is None:
            if len(self._orders) >= self._max:
                del self._orders[next(iter(self._orders))]
            order = self._orders[oid] = _Order()
        return order

    def remember(self, oid: int, cloid: str, size: Decimal) -> None:
        """An order we placed (from the exchange's answer): its fills can be named early."""
        order = self._get(oid)
        order.cloid, order.size = cloid, size

    def on_order(self, update: OrderWithStatus) -> VenueOrder | None:
        basic = update.order
        order = self._get(basic.oid)
        order.cloid = basic.cloid or order.cloid
        order.size = basic.orig_sz
        order.remaining = basic.sz
        order.status = update.status
        return self._event(basic.oid, order)

    def on_fill(self, fill: UserFill, emit: bool = True) -> VenueOrder | None:
        order = self._get(fill.oid)
        order.fills[fill.tid] = (fill.sz, fill.px)
        return self._event(fill.oid, order) if emit else None

    def _event(self, oid: int, order: _Order) -> VenueOrder | None:
        if order.cloid is None or order.size is None:
            return None  # not an order we placed, or not known yet
        filled = sum((sz for sz, _ in order.fills.values()), Decimal(0))
        if order.remaining is not None and order.size - order.remaining > filled:
            return None  # the fills that explain this quantity have not arrived yet
        state, reason = status_outcome(order.status or "open", filled, order.size)
        if state is OrderState.FILLED and filled < order.size:
            return None  # "filled" before all its fills arrived
        if (state, filled) == order.sent:
            return None
        order.sent = (state, filled)
        notional = sum((sz * px for sz, px in order.fills.values()), Decimal(0))
        return VenueOrder(
            client_id=order.cloid,
            state=state,
            filled_qty=filled,
            avg_price=notional / filled if filled else None,
            venue_order_id=str(oid),
            reason=reason,
            raw_message=order.status if reason is not None else None,
        )
