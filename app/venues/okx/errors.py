"""OKX's codes and order states in the execution contract's vocabulary (pure).

Codes from https://www.okx.com/docs-v5/en/#error-code-rest-api. A refused order answers
HTTP 200 with ``code`` "1" and the reason in ``data[0].sCode`` / ``sMsg`` (and a sub-code:
51008 arrives as "51008" with ``subCode`` "1001" and so on); a request refused as a whole
carries the reason in ``code`` itself (50011 rate limit, 5010x authentication, 51000 a bad
parameter).
"""

from __future__ import annotations

from decimal import Decimal

from app.venues.execution import OrderState, RejectReason

# "Rate limit reached" (HTTP 429 or 200), and the sub-account's 1,000 orders per 2 s.
# On the websocket, 60014 "Requests too frequent".
RATE_LIMITED = frozenset({"50011", "50061", "60014"})
# The websocket's "Please log in": the order was refused unplaced on a session that lost
# its login; a new connection (or REST) takes it.
NOT_LOGGED_IN = "60011"
# OKX's rate limits are windows of 2 s and it sends no reset time: wait one window.
RATE_WINDOW_S = 2.0
DUPLICATE_CL_ORD_ID = "51016"
ORDER_NOT_FOUND = "51603"
# Service unavailable, endpoint timeout ("does not mean that the request was successful or
# failed"), system busy, system error: the order may or may not exist.
# "Timestamp request expired" (50102) was surely refused, but for a passing reason: the same
# path (query, then send again) is right for it.
# 51149, in an order's sCode, is "Order timed out": the same.
OUTCOME_UNKNOWN = frozenset({"50001", "50004", "50013", "50026", "50102", "51149"})
# The key cannot trade: passphrase, key, timestamp, signature, authorization, IP, permission,
# blocked accounts.
KEY_REFUSED = frozenset(
    {
        "50100",
        "50101",
        "50103",
        "50104",
        "50105",
        "50106",
        "50107",
        "50110",
        "50111",
        "50112",
        "50113",
        "50114",
        "50120",
        "50030",
        "50007",
        "50009",
        "51009",
        "51024",
    }
)
# "Request unsupported under current account mode": a Spot-mode account cannot trade swaps.
ACCOUNT_MODE = "51010"

REJECT_REASONS: dict[str, RejectReason] = {
    "51008": RejectReason.INSUFFICIENT_MARGIN,  # insufficient balance / margin
    "51119": RejectReason.INSUFFICIENT_MARGIN,
    "51127": RejectReason.INSUFFICIENT_MARGIN,  # available balance is 0
    "51131": RejectReason.INSUFFICIENT_MARGIN,
    "51121": RejectReason.BAD_PRECISION,  # order quantity must be a multiple of the lot size
    "51150": RejectReason.BAD_PRECISION,  # precision of the size or price exceeds the limit
    "51020": RejectReason.BELOW_MIN_NOTIONAL,  # below the minimum order amount (minSz)
    "51169": RejectReason.REDUCE_ONLY_REJECTED,  # no position in this direction to reduce
    "51170": RejectReason.REDUCE_ONLY_REJECTED,  # reduce-only in the position's direction
    "51205": RejectReason.REDUCE_ONLY_REJECTED,  # reduce only is not available
    "51001": RejectReason.UNKNOWN_SYMBOL,  # instrument ID doesn't exist
    "51015": RejectReason.UNKNOWN_SYMBOL,  # instrument ID doesn't match instrument type
}


def is_long_short_refusal(code: str, message: str) -> bool:
    """An order without ``posSide`` in long/short mode: "Parameter posSide error" (51000)."""
    return code == "51000" and "posside" in message.lower()


def reject_reason(code: str) -> RejectReason:
    return REJECT_REASONS.get(code, RejectReason.VENUE_ERROR)


_STATES = {
    "live": OrderState.ACCEPTED,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    # An IOC's unfilled rest is cancelled (it may carry a fill); so is a market order that
    # found no liquidity.
    "canceled": OrderState.CANCELED,
    "mmp_canceled": OrderState.CANCELED,
}


def order_state(state: str, filled: Decimal) -> OrderState:
    """The contract state of an OKX order ``state``; ValueError for one OKX does not list."""
    result = _STATES.get(state)
    if result is None:
        raise ValueError(f"state: unknown value {state!r}")
    if result is OrderState.ACCEPTED and filled > 0:
        return OrderState.PARTIALLY_FILLED
    return result
