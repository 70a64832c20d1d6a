"""OKX's private stream and order rows, read into the execution contract's events (pure).

Channels: ``orders`` (an order's cumulative ``accFillSz`` in contracts and ``avgPx``),
``positions`` (``pos`` in contracts, signed in net mode) and ``account`` (``totalEq``).
Sizes become base units through each instrument's ``ctVal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

import msgspec
import structlog

from app.venues.execution import AccountEvent, ExecutionError, VenueOrder
from app.venues.okx import schemas
from app.venues.okx.contracts import Contract
from app.venues.okx.errors import order_state

log = structlog.get_logger(__name__)


def decimal(value: str, field: str) -> Decimal:
    """A decimal from one of OKX's amount strings; ValueError names the field."""
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{field}: not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"{field}: not finite")
    return result


def venue_order(row: schemas.Order, contract: Contract) -> VenueOrder:
    """The contract's view of one OKX order (REST or ``orders`` channel), in base units."""
    filled = contract.base(decimal(row.accFillSz or "0", "accFillSz"))
    average = decimal(row.avgPx, "avgPx") if row.avgPx else None
    return VenueOrder(
        client_id=row.clOrdId,
        state=order_state(row.state, filled),
        filled_qty=filled,
        avg_price=average if average else None,
        venue_order_id=row.ordId or None,
    )


def signed_position(row: schemas.Position, contract: Contract) -> Decimal:
    """A position row in signed base units (long/short mode: ``pos`` is positive per side)."""
    pos = decimal(row.pos or "0", "pos")
    if row.posSide == "short":
        pos = -abs(pos)
    elif row.posSide == "long":
        pos = abs(pos)
    return contract.base(pos)


def parse_stream(
    raw: str | bytes, contracts: Mapping[str, Contract], at: datetime
) -> list[AccountEvent]:
    """The account events in one private-stream message (acks and pongs: none); raises
    ExecutionError for an ``error`` event.

    A row that cannot be read, or of an instrument not in ``contracts``, is logged and
    skipped; the message's other rows still apply.
    """
    if raw in ("pong", b"pong"):
        return []
    try:
        message = schemas.STREAM.decode(raw)
    except msgspec.DecodeError:
        log.warning("okx_stream_unreadable", size=len(raw))
        return []
    if message.event == "error":
        # e.g. 60011 "Please log in", 60012 bad request: this connection is no use any more.
        raise ExecutionError(f"okx websocket error {message.code}: {message.msg:.200}")
    channel = message.arg.channel if message.arg else ""
    try:
        if channel == "orders":
            return _orders(schemas.ORDER_ROWS.decode(message.data), contracts, at)
        if channel == "positions":
            positions: dict[str, Decimal] = {}
            for row in schemas.POSITION_ROWS.decode(message.data):
                contract = contracts.get(row.instId)
                if contract is None or contract.inverse:
                    log.warning("okx_stream_position_skipped", inst_id=row.instId)
                    continue
                positions[row.instId] = positions.get(row.instId, Decimal(0)) + (
                    signed_position(row, contract)
                )
            return [AccountEvent(positions=positions, at=at)] if positions else []
        if channel == "account":
            rows = [r for r in schemas.BALANCE_ROWS.decode(message.data) if r.totalEq]
            if rows:
                return [AccountEvent(equity=decimal(rows[0].totalEq, "totalEq"), at=at)]
    except (msgspec.ValidationError, ValueError) as exc:
        log.warning("okx_stream_malformed", channel=channel, error=str(exc)[:200])
    return []


def _orders(
    rows: list[schemas.Order], contracts: Mapping[str, Contract], at: datetime
) -> list[AccountEvent]:
    events: list[AccountEvent] = []
    for row in rows:
        contract = contracts.get(row.instId)
        if not row.clOrdId or contract is None:
            continue  # not placed by Copytrade, or an instrument we do not trade
        try:
            events.append(AccountEvent(order=venue_order(row, contract), at=at))
        except ValueError as exc:
            log.warning("okx_stream_row_skipped", error=str(exc)[:200])
    return events
