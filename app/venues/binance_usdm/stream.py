"""Binance USD-M's user data stream and order answers, read into the execution contract's
events (pure).

``ORDER_TRADE_UPDATE`` carries an order's state, cumulative filled quantity and average price;
``ACCOUNT_UPDATE`` the positions it changed (its balances are wallet balances, not the equity,
so they are not read).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from app.venues.binance_usdm import schemas
from app.venues.execution import AccountEvent, OrderState, VenueOrder

EVENT_DECODER = msgspec.json.Decoder(schemas.StreamEvent)


def venue_order(order: schemas.Order) -> VenueOrder:
    filled = order.executedQty
    return VenueOrder(
        client_id=order.clientOrderId,
        state=schemas.STATES.get(order.status, OrderState.ACCEPTED),
        filled_qty=filled,
        avg_price=order.avgPrice if filled > 0 else None,
        venue_order_id=str(order.orderId),
    )


def parse_event(event: schemas.StreamEvent) -> AccountEvent | None:
    at = datetime.now(UTC)
    if event.e == "ORDER_TRADE_UPDATE" and event.o is not None:
        o = event.o
        if o.X not in schemas.STATES:
            return None
        return AccountEvent(
            order=VenueOrder(
                client_id=o.c,
                state=schemas.STATES[o.X],
                filled_qty=o.z,
                avg_price=o.ap if o.z > 0 else None,
                venue_order_id=str(o.i),
            ),
            at=at,
        )
    if event.e == "ACCOUNT_UPDATE" and event.a is not None:
        # Positions only: the balances it carries are wallet balances, not the equity.
        positions: dict[str, Decimal] = {}
        for p in event.a.P:
            positions[p.s] = positions.get(p.s, Decimal(0)) + p.pa
        return AccountEvent(positions=positions, at=at) if positions else None
    return None
