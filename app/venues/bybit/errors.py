"""Bybit's retCodes and order states in the execution contract's vocabulary (pure).

Codes from https://bybit-exchange.github.io/docs/v5/error. 10001 is Bybit's catch-all
"request parameter error": a quantity or price off its step, a quantity under the minimum
(``bad_precision``), an unknown symbol ("params error: symbol invalid") and an order whose
``positionIdx`` does not fit the account's position mode ("position idx not match position
mode", i.e. hedge mode) all answer 10001, told apart by the message.
"""

from __future__ import annotations

from decimal import Decimal

from app.venues.execution import OrderState, RejectReason

# Per UID, per IP; on the trade socket also 10429 (system frequency protection) and 20003
# (too frequent requests on the session).
RATE_LIMITED = frozenset({10006, 10018, 10429, 20003})
# The trade socket's "ws trade service is restarting, do not accept new request": refused
# unplaced; a new connection (or REST) is served.
TRADE_SERVICE_RESTARTING = 10019
DUPLICATE_LINK_ID = 110072
# Server timeout, server error / restarting: the order may or may not exist. A timestamp
# outside recv_window (10002) was surely refused, but for a passing reason: the same path
# (query, then send again) is right for it.
OUTCOME_UNKNOWN = frozenset({10000, 10002, 10016})
# The key cannot trade: invalid, bad signature, no permission, IP not bound, expired.
KEY_REFUSED = frozenset({10003, 10004, 10005, 10007, 10010, 33004})
HEDGE_MODE_MESSAGE = "position idx not match position mode"

REJECT_REASONS: dict[int, RejectReason] = {
    110004: RejectReason.INSUFFICIENT_MARGIN,  # wallet balance is insufficient
    110006: RejectReason.INSUFFICIENT_MARGIN,  # assets cannot cover the position margin
    110007: RejectReason.INSUFFICIENT_MARGIN,  # available balance is insufficient
    110012: RejectReason.INSUFFICIENT_MARGIN,
    110044: RejectReason.INSUFFICIENT_MARGIN,  # available margin is insufficient
    110045: RejectReason.INSUFFICIENT_MARGIN,
    # "orderQty will be truncated to zero": a reduce-only order with nothing to reduce.
    110017: RejectReason.REDUCE_ONLY_REJECTED,
    110094: RejectReason.BELOW_MIN_NOTIONAL,  # order notional value below the lower limit
    10001: RejectReason.BAD_PRECISION,
    10029: RejectReason.UNKNOWN_SYMBOL,  # not in the key's symbol whitelist
}


def is_hedge_mode_refusal(code: int, message: str) -> bool:
    return code == 10001 and HEDGE_MODE_MESSAGE in message.lower()


def reject_reason(code: int, message: str) -> RejectReason:
    """The reason of an order refusal (a code not listed is ``venue_error``)."""
    if code == 10001 and "symbol" in message.lower():
        return RejectReason.UNKNOWN_SYMBOL
    return REJECT_REASONS.get(code, RejectReason.VENUE_ERROR)


_STATES = {
    "New": OrderState.ACCEPTED,
    "Untriggered": OrderState.ACCEPTED,
    "Triggered": OrderState.ACCEPTED,
    "PartiallyFilled": OrderState.PARTIALLY_FILLED,
    "Filled": OrderState.FILLED,
    # An IOC's unfilled rest and a market order without liquidity end "Cancelled"; in
    # derivatives a cancelled order may carry an executed quantity.
    "Cancelled": OrderState.CANCELED,
    "PartiallyFilledCanceled": OrderState.CANCELED,
    "Deactivated": OrderState.CANCELED,
    "Rejected": OrderState.REJECTED,
}


def order_state(status: str, filled: Decimal) -> OrderState:
    """The contract state of an ``orderStatus``; ValueError for a status Bybit does not list."""
    state = _STATES.get(status)
    if state is None:
        raise ValueError(f"orderStatus: unknown value {status!r}")
    if state is OrderState.ACCEPTED and filled > 0:
        return OrderState.PARTIALLY_FILLED
    return state
