"""Immutable domain values: fills, equity readings, instruments, sized orders."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

DEFAULT_QTY_STEP = Decimal("0.00000001")


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class SkipReason(enum.StrEnum):
    """Why an order was recorded but not dispatched. Stable codes: executors and UIs key on them."""

    NO_EQUITY = "no_equity"
    ROUNDS_TO_ZERO = "rounds_to_zero"
    BELOW_MIN_QTY = "below_min_qty"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    # Position-aware sizing (app.domain.planner).
    STALE_EQUITY = "stale_equity"
    SYMBOL_NOT_ALLOWED = "symbol_not_allowed"
    SYMBOL_DENIED = "symbol_denied"
    # The follower's venue lists no perpetual of the leader symbol's base asset.
    SYMBOL_NOT_LISTED = "symbol_not_listed"
    SUBSCRIPTION_PAUSED = "subscription_paused"
    CLOSE_ONLY = "close_only"
    NO_POSITION_TO_REDUCE = "no_position_to_reduce"
    TARGET_REACHED = "target_reached"
    # A cap left no room at all; named like the setting, as in Plan.clamps.
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_LEVERAGE = "max_leverage"


@dataclass(frozen=True, slots=True)
class Fill:
    """A leader's execution, as received. ``fill_id`` is unique per leader.

    Venues add what they know besides the trade: the fee, whether the order was reduce-only
    (or a close), and whether it was a liquidation or auto-deleveraging. Sizing does not use
    them: a liquidation moves the leader's position like any trade, and the follower follows
    that position; they are kept so an operator can tell a forced close from a decision.
    """

    leader_id: UUID
    fill_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    event_at: datetime
    received_at: datetime
    fee: Decimal | None = None
    fee_asset: str | None = None
    reduce_only: bool | None = None
    liquidation: bool = False


@dataclass(frozen=True, slots=True)
class EquityReading:
    """The newest equity snapshot of an account, with the row id it came from (for tracing)."""

    snapshot_id: int
    equity: Decimal
    as_of: datetime
