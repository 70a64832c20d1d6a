"""Bybit's private stream and order rows, read into the execution contract's events (pure).

Topics: ``order`` (an order's cumulative state and average price), ``execution`` (each fill:
the order's filled quantity is ``orderQty - leavesQty``), ``position`` (a symbol's size and
side) and ``wallet`` (the margin balance, ``totalMarginBalance``).

Every order update carries its average price. An execution row has only its own price, so the
fills of each order are added up per connection (``Fills``): an execution becomes an update
only when the fills seen add up to the order's filled quantity (the stream opened after an
earlier fill: the ``order`` topic's update of the same fill covers it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import msgspec
import structlog

from app.venues.bybit import schemas
from app.venues.bybit.errors import order_state
from app.venues.execution import AccountEvent, OrderState, RejectReason, VenueOrder

log = structlog.get_logger(__name__)

T = TypeVar("T")

CATEGORY: Final = "linear"


def decimal(value: str, field: str) -> Decimal:
    """A decimal from one of Bybit's amount strings; ValueError names the field."""
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{field}: not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"{field}: not finite")
    return result


def venue_order(row: schemas.Order) -> VenueOrder:
    """The contract's view of one Bybit order row (REST or ``order`` topic)."""
    filled = decimal(row.cumExecQty or "0", "cumExecQty")
    state = order_state(row.orderStatus, filled)
    average = decimal(row.avgPrice, "avgPrice") if row.avgPrice else None
    rejected = state is OrderState.REJECTED
    return VenueOrder(
        client_id=row.orderLinkId,
        state=state,
        filled_qty=filled,
        avg_price=average if average else None,
        venue_order_id=row.orderId or None,
        reason=RejectReason.VENUE_ERROR if rejected else None,
        raw_message=row.rejectReason or None if rejected else None,
    )


def add_position(positions: dict[str, Decimal], row: schemas.Position) -> None:
    """Add a position row to ``positions`` as signed base units (hedge mode: long + short)."""
    size = decimal(row.size or "0", "size")
    signed = -size if row.side == "Sell" else size if row.side == "Buy" else Decimal(0)
    positions[row.symbol] = positions.get(row.symbol, Decimal(0)) + signed


class Fills:
    """The executions seen per order on one connection: (quantity, value) by orderLinkId."""

    MAX_ORDERS: Final = 10_000  # orders in flight at once are far fewer; oldest go first

    def __init__(self) -> None:
        self._totals: dict[str, tuple[Decimal, Decimal]] = {}

    def add(
        self, link_id: str, qty: Decimal, price: Decimal, done: bool
    ) -> tuple[Decimal, Decimal]:
        seen_qty, value = self._totals.pop(link_id, (Decimal(0), Decimal(0)))
        total = (seen_qty + qty, value + qty * price)
        if not done:
            self._totals[link_id] = total
            while len(self._totals) > self.MAX_ORDERS:
                del self._totals[next(iter(self._totals))]
        return total


def parse_stream(raw: str | bytes, fills: Fills | None = None) -> list[AccountEvent]:
    """The account events in one private-stream message (replies and pongs: none); ``fills``
    is the connection's execution memory (a fresh one when not given).

    A row that cannot be read is logged and skipped; the message's other rows still apply.
    """
    try:
        message = schemas.STREAM.decode(raw)
    except msgspec.DecodeError:
        log.warning("bybit_stream_unreadable", size=len(raw))
        return []
    topic = message.topic.split(".")[0]
    at = datetime.fromtimestamp(message.creationTime / 1000, UTC) if message.creationTime else None
    try:
        if topic == "order":
            return _rows(schemas.ORDER_ROWS, message.data, _order_event, at)
        if topic == "execution":
            memory = fills if fills is not None else Fills()
            return _rows(
                schemas.EXECUTION_ROWS, message.data, lambda row: _execution(row, memory), at
            )
        if topic == "position":
            positions: dict[str, Decimal] = {}
            for row in schemas.POSITION_ROWS.decode(message.data):
                if row.category == CATEGORY:
                    add_position(positions, row)
            return [AccountEvent(positions=positions, at=at)] if positions else []
        if topic == "wallet":
            wallets = schemas.WALLET_ROWS.decode(message.data)
            unified = [w for w in wallets if w.totalMarginBalance]
            if unified:
                equity = decimal(unified[0].totalMarginBalance, "totalMarginBalance")
                return [AccountEvent(equity=equity, at=at)]
    except (msgspec.ValidationError, ValueError) as exc:
        log.warning("bybit_stream_malformed", topic=message.topic, error=str(exc)[:200])
    return []


def _rows(
    decoder: msgspec.json.Decoder[list[T]],
    data: msgspec.Raw,
    convert: Any,
    at: datetime | None,
) -> list[AccountEvent]:
    events: list[AccountEvent] = []
    for row in decoder.decode(data):
        try:
            order: VenueOrder | None = convert(row)
        except ValueError as exc:
            log.warning("bybit_stream_row_skipped", error=str(exc)[:200])
            continue
        if order is not None:
            events.append(AccountEvent(order=order, at=at))
    return events


def _order_event(row: schemas.Order) -> VenueOrder | None:
    if row.category != CATEGORY or not row.orderLinkId:
        return None  # another category, or an order placed without a link id
    return venue_order(row)


def _execution(row: schemas.Execution, fills: Fills) -> VenueOrder | None:
    """A trade execution as the order's cumulative state and average price, when the fills
    seen on this connection account for all of the order's filled quantity."""
    if row.category != CATEGORY or not row.orderLinkId or row.execType != "Trade":
        return None  # another category, an order without link id, funding or a liquidation
    leaves = decimal(row.leavesQty, "leavesQty")
    filled = decimal(row.orderQty, "orderQty") - leaves
    seen, value = fills.add(
        row.orderLinkId,
        decimal(row.execQty, "execQty"),
        decimal(row.execPrice, "execPrice"),
        done=leaves == 0,
    )
    if seen != filled or seen <= 0:
        return None
    return VenueOrder(
        client_id=row.orderLinkId,
        state=OrderState.PARTIALLY_FILLED if leaves > 0 else OrderState.FILLED,
        filled_qty=filled,
        avg_price=value / seen,
        venue_order_id=row.orderId or None,
    )
