"""Inputs and outputs of the sizing planner: subscription settings, lot rules, the plan."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from app.domain.model import EquityReading, Fill, Side, SkipReason
from app.domain.positions import FillEffect


class SizingMode(enum.StrEnum):
    TARGET = "target"  # trade the follower to its target position (default, drift-free)
    PER_FILL = "per_fill"  # scale each fill by the equity ratio
    FIXED_MULTIPLIER = "fixed_multiplier"  # leader qty x multiplier
    FIXED_NOTIONAL = "fixed_notional"  # a fixed quote amount per opening fill


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # nothing is sent
    CLOSE_ONLY = "close_only"  # only reducing legs are sent


class Rounding(enum.StrEnum):
    """How an order's size is rounded to the lot step (``sizing.rounding``)."""

    # Never above the target in size: opening and adding orders round down, reducing orders
    # round up (to at most the whole position).
    CONSERVATIVE = "conservative"
    # The smallest tracking error: the order rounds to the nearest step (a tie to the even
    # one), so the position ends within half a step of where the mode asked.
    NEAREST = "nearest"


class DriftMode(enum.StrEnum):
    """What happens when a follower's venue position drifts from its target (app.domain.drift)."""

    ALERT = "alert"  # flagged in the positions view, on the feed and in the metric
    RESYNC = "resync"  # a correcting order toward the target, a ``sync`` event
    ADOPT = "adopt"  # the venue's position is the follower's own: kept, not flagged


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


IOC = "IOC"  # the only time in force the planner sets: a slippage-bounded limit never rests

# Names recorded in Plan.clamps, in the order the caps are applied.
MAX_ORDER_NOTIONAL = "max_order_notional"
MAX_POSITION_NOTIONAL = "max_position_notional"
MAX_LEVERAGE = "max_leverage"


@dataclass(frozen=True, slots=True)
class SizingSettings:
    """One subscription's sizing settings. Raises ValueError naming the field when invalid."""

    mode: SizingMode = SizingMode.TARGET
    multiplier: Decimal = Decimal(1)
    notional: Decimal | None = None  # quote currency per opening fill; fixed_notional only
    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None  # per symbol
    max_leverage: Decimal | None = None  # follower gross exposure / follower equity
    allow: frozenset[str] | None = None  # None: every symbol
    deny: frozenset[str] = frozenset()
    # Leader symbol -> follower symbol; copied into a read-only view, so it cannot change later.
    symbol_map: Mapping[str, str] = field(default_factory=dict, hash=False)
    max_slippage: Decimal | None = None  # a fraction of the leader's price, e.g. 0.005
    max_equity_age_s: float | None = None
    equity_floor: Decimal | None = None  # follower equity below it turns the plan close_only
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    rounding: Rounding = Rounding.CONSERVATIVE
    drift: DriftMode = DriftMode.ALERT
    # A drift counts beyond one lot step and, in notional terms, this fraction of equity.
    drift_tolerance: Decimal = Decimal("0.01")
    drift_min_interval_s: float = 60.0  # between two resyncs of one follower and symbol

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol_map", MappingProxyType(dict(self.symbol_map)))
        _positive("multiplier", self.multiplier)
        for name in ("notional", "max_order_notional", "max_position_notional", "max_leverage"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        if self.mode is SizingMode.FIXED_NOTIONAL and self.notional is None:
            raise ValueError("notional: required when mode is fixed_notional")
        if self.max_slippage is not None and not (
            self.max_slippage.is_finite() and 0 <= self.max_slippage < 1
        ):
            raise ValueError("max_slippage: must be at least 0 and below 1")
        if self.max_equity_age_s is not None and not self.max_equity_age_s >= 0:
            raise ValueError("max_equity_age_s: must not be negative")
        if self.equity_floor is not None and not self.equity_floor.is_finite():
            raise ValueError("equity_floor: must be finite")
        if not (self.drift_tolerance.is_finite() and 0 <= self.drift_tolerance < 1):
            raise ValueError("drift_tolerance: must be at least 0 and below 1")
        if not self.drift_min_interval_s >= 0:
            raise ValueError("drift_min_interval_s: must not be negative")


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """Lot and tick rules of the follower's symbol. Raises ValueError naming the field."""

    symbol: str
    qty_step: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    price_step: Decimal | None = None  # None: limit prices are not rounded

    def __post_init__(self) -> None:
        _positive("qty_step", self.qty_step)
        if self.price_step is not None:
            _positive("price_step", self.price_step)
        for name in ("min_qty", "min_notional"):
            value: Decimal = getattr(self, name)
            if not (value.is_finite() and value >= 0):
                raise ValueError(f"{name}: must not be negative")


# PlanContext, PlannedLeg and Plan are built once per follower per fill: NamedTuples, as
# immutable as frozen dataclasses but cheaper to build, since a frozen dataclass's __init__
# goes through object.__setattr__ per field (docs/measurements.md).


class PlanContext(NamedTuple):
    """Everything the planner reads for one (leader fill, subscription) pair."""

    fill: Fill  # the leader's fill, in the leader's symbol
    leader_position_before: Decimal  # signed, leader symbol
    leader_equity: EquityReading | None
    follower_equity: EquityReading | None
    now: datetime  # for the age of the equity readings
    follower_position_before: Decimal  # signed, follower symbol
    # Sum of |position x mark| over the follower's other symbols, quote currency.
    follower_gross_exposure: Decimal
    instrument: InstrumentRules  # of the follower's symbol
    settings: SizingSettings


class PlannedLeg(NamedTuple):
    """One follower order: a reduce_only close, or an order that opens or adds."""

    side: Side
    qty: Decimal
    reduce_only: bool
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: str | None = None  # IOC for slippage-bounded limits


class Plan(NamedTuple):
    """The planner's answer for one fill, with everything needed to explain it.

    ``legs`` holds what to send: none, one, or a reduce_only close then an opening leg
    (a reversal). ``skip_reason`` says why something the mode asked for is not sent: with no
    legs the whole plan is skipped; with a lone close it is the held-back opening leg (the
    engine records it as a skipped order of its own).
    """

    symbol: str  # the follower's symbol
    legs: tuple[PlannedLeg, ...]
    skip_reason: SkipReason | None
    effect: FillEffect  # of the fill on the leader's position
    leader_position_before: Decimal
    leader_position_after: Decimal
    follower_position_before: Decimal
    follower_position_after: Decimal  # if every leg fills in full
    ratio: Decimal | None = None  # follower equity / leader equity, when the mode read them
    target: Decimal | None = None  # exact target position before rounding; target mode only
    raw_qty: Decimal | None = None  # the size the mode asked for, before rounding and caps
    # raw_qty minus the size rounding kept: negative where a reducing order rounded up
    residue: Decimal = Decimal(0)
    clamps: tuple[str, ...] = ()  # caps that cut the opening leg, in the order applied
    status_change: SubscriptionStatus | None = None  # the subscription's new status, if any
    status_reason: str | None = None  # why, e.g. "equity_floor"

    @property
    def skipped(self) -> bool:
        """Tell whether nothing is sent."""
        return not self.legs


def _positive(name: str, value: Decimal) -> None:
    if not (value.is_finite() and value > 0):
        raise ValueError(f"{name}: must be positive")
