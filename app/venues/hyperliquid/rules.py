"""Hyperliquid's order rules as pure functions: client order ids, price and size rounding,
and what the venue's statuses and error strings mean. No I/O.

Sources: for-developers/api/tick-and-lot-size (prices: at most 5 significant figures and at
most ``6 - szDecimals`` decimals for perps, integer prices always allowed; sizes on
``szDecimals``), error-responses (the per-order error strings) and info-endpoint (order
statuses such as ``perpMarginRejected`` or ``iocCancelRejected``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from app.domain.decimals import round_down
from app.domain.ids import ORDER_ID_PREFIX
from app.venues.execution import OrderState, RejectReason

# A market order is an IOC limit this far through the reference price: a buy pays at most
# reference * 1.05, a sell receives at least reference * 0.95 (the SDK's default slippage for
# its market orders). The fill is at the book's prices; this only bounds how far it may walk.
MARKET_SLIPPAGE = Decimal("0.05")
SIGNIFICANT_FIGURES = 5
MAX_PERP_DECIMALS = 6
CLOID = re.compile(r"^0x[0-9a-f]{32}$")
_ORDER_ID_BODY = 22  # base64 characters of an order id's 128 bits (app.domain.ids)


# -- client order ids -------------------------------------------------------------------------


def cloid_for(order_id: str) -> str:
    """The cloid (``0x`` + 32 lower-case hex digits) of an order id.

    An order id of app.domain.ids is a prefix and 128 bits in url-safe base64: the cloid is
    those same 128 bits in hex, so distinct order ids always give distinct cloids and the
    order id can be read back (``order_id_for``). Any other text is hashed to 128 bits.
    """
    raw = _order_id_bits(order_id)
    if raw is None:
        raw = hashlib.blake2b(order_id.encode(), digest_size=16, person=b"copytrade-cloid").digest()
    return "0x" + raw.hex()


def order_id_for(cloid: str) -> str:
    """The order id whose bits a cloid carries (the inverse of ``cloid_for`` on order ids)."""
    if not CLOID.match(cloid):
        raise ValueError(f"cloid: expected 0x and 32 hex digits, got {cloid!r}")
    encoded = base64.urlsafe_b64encode(bytes.fromhex(cloid[2:])).decode()
    return ORDER_ID_PREFIX + encoded[:_ORDER_ID_BODY]


def _order_id_bits(order_id: str) -> bytes | None:
    body = order_id.removeprefix(ORDER_ID_PREFIX)
    if len(order_id) != len(ORDER_ID_PREFIX) + _ORDER_ID_BODY or body == order_id:
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "==")
    except ValueError:
        return None
    # The last character carries 2 unused bits: only the canonical spelling maps back, so
    # two spellings of the same bits cannot share a cloid.
    if len(raw) != 16 or base64.urlsafe_b64encode(raw).decode()[:_ORDER_ID_BODY] != body:
        return None
    return raw


# -- rounding ---------------------------------------------------------------------------------


def price_decimals(price: Decimal, sz_decimals: int) -> int:
    """How many decimals a perp price of this magnitude may have (0: an integer price)."""
    by_figures = SIGNIFICANT_FIGURES - 1 - price.adjusted()
    return max(0, min(MAX_PERP_DECIMALS - sz_decimals, by_figures))


def is_valid_price(price: Decimal, sz_decimals: int) -> bool:
    """Does the venue accept this perp price (tick-and-lot-size rules)?"""
    if not price.is_finite() or price <= 0:
        return False
    if price == price.to_integral_value():
        return True
    _, digits, exponent = price.normalize().as_tuple()
    assert isinstance(exponent, int)
    return len(digits) <= SIGNIFICANT_FIGURES and -exponent <= MAX_PERP_DECIMALS - sz_decimals


def limit_price(
    side: Literal["buy", "sell"],
    reference_price: Decimal,
    limit: Decimal | None,
    sz_decimals: int,
    slippage: Decimal = MARKET_SLIPPAGE,
) -> Decimal:
    """The IOC limit price to send: ``limit`` when set, else the reference price moved by
    ``slippage`` against us. Rounded onto the venue's price grid in the direction that never
    pays more (a buy rounds down, a sell rounds up). 0 when no valid price is that low."""
    if limit is not None:
        target = limit
    elif side == "buy":
        target = reference_price * (1 + slippage)
    else:
        target = reference_price * (1 - slippage)
    places = price_decimals(target, sz_decimals)
    rounding = ROUND_FLOOR if side == "buy" else ROUND_CEILING
    return target.quantize(Decimal(1).scaleb(-places), rounding=rounding)


def order_size(qty: Decimal, sz_decimals: int) -> Decimal:
    """``qty`` rounded down to the asset's ``szDecimals`` (never more than was sized)."""
    return round_down(qty, Decimal(1).scaleb(-sz_decimals))


# -- what the venue says ----------------------------------------------------------------------

# Per-order error strings (error-responses page), lower case, to the reason they mean.
_ERRORS: tuple[tuple[str, RejectReason], ...] = (
    ("insufficient margin", RejectReason.INSUFFICIENT_MARGIN),
    ("minimum value of", RejectReason.BELOW_MIN_NOTIONAL),
    ("tick size", RejectReason.BAD_PRECISION),
    ("invalid price", RejectReason.BAD_PRECISION),
    ("invalid size", RejectReason.BAD_PRECISION),
    ("reduce only order would increase position", RejectReason.REDUCE_ONLY_REJECTED),
    ("unknown asset", RejectReason.UNKNOWN_SYMBOL),
    ("invalid asset", RejectReason.UNKNOWN_SYMBOL),
)
# An IOC that met no order at its price ended unfilled: expired, not refused.
_UNFILLED = ("could not immediately match", "no liquidity available")
# Order statuses (orderStatus, orderUpdates) that are refusals, to their reason.
_REJECTED_STATUSES = {
    "perpMarginRejected": RejectReason.INSUFFICIENT_MARGIN,
    "minTradeNtlRejected": RejectReason.BELOW_MIN_NOTIONAL,
    "tickRejected": RejectReason.BAD_PRECISION,
    "reduceOnlyRejected": RejectReason.REDUCE_ONLY_REJECTED,
}
_UNFILLED_STATUSES = frozenset({"iocCancelRejected", "marketOrderNoLiquidityRejected"})


def error_outcome(message: str) -> tuple[OrderState, RejectReason | None]:
    """What a per-order ``error`` string means: (REJECTED, reason) or (EXPIRED, None)."""
    lowered = message.lower()
    if any(text in lowered for text in _UNFILLED):
        return OrderState.EXPIRED, None
    for text, reason in _ERRORS:
        if text in lowered:
            return OrderState.REJECTED, reason
    return OrderState.REJECTED, RejectReason.VENUE_ERROR


def is_duplicate_cloid(message: str) -> bool:
    """A refusal because the cloid was used before: the order exists, it is not a rejection."""
    lowered = message.lower()
    return "cloid" in lowered and "duplicate" in lowered


def status_outcome(
    status: str, filled: Decimal, size: Decimal
) -> tuple[OrderState, RejectReason | None]:
    """What an order status means for one of our IOC orders, given what it has filled.

    An IOC never rests: when the venue cancels its unfilled rest, the order has expired (as
    Binance says of an IOC), whatever it filled before.
    """
    if status == "filled" or (size > 0 and filled >= size):
        return OrderState.FILLED, None
    if status in ("open", "triggered"):
        return (OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.ACCEPTED), None
    if status == "canceled" or status in _UNFILLED_STATUSES:
        return OrderState.EXPIRED, None
    if status in _REJECTED_STATUSES:
        return OrderState.REJECTED, _REJECTED_STATUSES[status]
    if status == "rejected" or status.endswith("Rejected"):
        return OrderState.REJECTED, RejectReason.VENUE_ERROR
    if status.endswith("Canceled") or status == "scheduledCancel":
        return OrderState.CANCELED, None
    # A status this client does not know yet: the order exists, its end is not known.
    return (OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.ACCEPTED), None
