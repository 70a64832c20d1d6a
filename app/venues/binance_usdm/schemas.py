"""Binance USD-M wire formats the executor reads (msgspec Structs), and the error codes.

Fields from Binance's USD-M docs: New Order / Query Order answer an order object
(``clientOrderId``, ``status``, ``executedQty``, ``avgPrice``, ``orderId``); errors are
``{"code": -2019, "msg": "..."}``; the user data stream sends ``ORDER_TRADE_UPDATE`` (``o.c``
client id, ``o.X`` status, ``o.z`` cumulative filled, ``o.ap`` average price) and
``ACCOUNT_UPDATE`` (``a.P``: positions with ``s``, ``pa``, ``ps``; ``a.B``: balances whose
``wb`` is the wallet balance, never the equity).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from app.venues.execution import OrderState, RejectReason


class ApiError(msgspec.Struct):
    code: int = 0
    msg: str = ""


class Order(msgspec.Struct):
    clientOrderId: str
    status: str
    orderId: int = 0
    executedQty: Decimal = Decimal(0)
    avgPrice: Decimal = Decimal(0)


class Position(msgspec.Struct):
    symbol: str
    positionAmt: Decimal
    positionSide: str = "BOTH"


class Account(msgspec.Struct):
    totalMarginBalance: Decimal
    positions: list[Position] = []


class DualSide(msgspec.Struct):
    dualSidePosition: bool


class ListenKey(msgspec.Struct):
    listenKey: str


class StreamOrder(msgspec.Struct):
    c: str
    X: str
    s: str = ""
    z: Decimal = Decimal(0)
    ap: Decimal = Decimal(0)
    i: int = 0


class StreamPosition(msgspec.Struct):
    s: str
    pa: Decimal
    ps: str = "BOTH"


class StreamAccount(msgspec.Struct):
    P: list[StreamPosition] = []


class StreamEvent(msgspec.Struct):
    e: str
    o: StreamOrder | None = None
    a: StreamAccount | None = None


STATES = {
    "NEW": OrderState.ACCEPTED,
    "PARTIALLY_FILLED": OrderState.PARTIALLY_FILLED,
    "FILLED": OrderState.FILLED,
    "CANCELED": OrderState.CANCELED,
    "EXPIRED": OrderState.EXPIRED,
    "EXPIRED_IN_MATCH": OrderState.EXPIRED,
    "REJECTED": OrderState.REJECTED,
}

# Binance's error codes (USD-M "Error Codes") mapped to the report's reasons.
REJECTIONS = {
    -1111: RejectReason.BAD_PRECISION,  # BAD_PRECISION
    -4014: RejectReason.BAD_PRECISION,  # PRICE_NOT_INCREASED_BY_TICK_SIZE
    -4023: RejectReason.BAD_PRECISION,  # QTY_NOT_INCREASED_BY_STEP_SIZE
    -2019: RejectReason.INSUFFICIENT_MARGIN,  # MARGIN_NOT_SUFFICIEN
    -4164: RejectReason.BELOW_MIN_NOTIONAL,  # MIN_NOTIONAL
    -2022: RejectReason.REDUCE_ONLY_REJECTED,  # REDUCE_ONLY_REJECT
    -1121: RejectReason.UNKNOWN_SYMBOL,  # BAD_SYMBOL
}
# "ClientOrderId is duplicated.": an open order has this id already.
DUPLICATE_CLIENT_ID = -4116
# "Order does not exist." (also unfilled canceled/expired orders older than 3 days).
NO_SUCH_ORDER = -2013
# "Execution status unknown": an unexpected answer, or the backend timed out.
UNKNOWN_CODES = frozenset({-1006, -1007})
# The key is refused: wrong key, IP not whitelisted, or no futures trading permission.
KEY_REFUSED = frozenset({-2014, -2015, -1022})


def reason_for(code: int) -> RejectReason:
    return REJECTIONS.get(code, RejectReason.VENUE_ERROR)
