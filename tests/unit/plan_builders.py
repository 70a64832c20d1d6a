"""Builders of planner inputs for the unit tests (plain values, no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.domain.decimals import fmt
from app.domain.model import EquityReading, Fill, Side
from app.domain.planner import InstrumentRules, Plan, PlanContext, SizingSettings

LEADER_ID = UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2024, 11, 24, tzinfo=UTC)
SYMBOL = "BTCUSDT"

Equity = str | EquityReading | None


def make_fill(
    side: Side = Side.BUY, qty: str | Decimal = "2", price: str | Decimal = "50000"
) -> Fill:
    return Fill(
        leader_id=LEADER_ID,
        fill_id="fill-1",
        symbol=SYMBOL,
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        event_at=AT,
        received_at=AT,
    )


def equity(value: str | Decimal, snapshot_id: int = 1, as_of: datetime = AT) -> EquityReading:
    return EquityReading(snapshot_id=snapshot_id, equity=Decimal(value), as_of=as_of)


def rules(
    step: str = "0.001",
    *,
    symbol: str = SYMBOL,
    min_qty: str = "0",
    min_notional: str = "0",
    price_step: str | None = None,
) -> InstrumentRules:
    return InstrumentRules(
        symbol=symbol,
        qty_step=Decimal(step),
        min_qty=Decimal(min_qty),
        min_notional=Decimal(min_notional),
        price_step=None if price_step is None else Decimal(price_step),
    )


def _reading(value: Equity, snapshot_id: int) -> EquityReading | None:
    if value is None or isinstance(value, EquityReading):
        return value
    return equity(value, snapshot_id)


def context(
    *,
    side: Side = Side.BUY,
    qty: str = "2",
    price: str = "50000",
    leader: str = "0",
    follower: str = "0",
    leader_equity: Equity = "100000",
    follower_equity: Equity = "10000",
    settings: SizingSettings | None = None,
    inst: InstrumentRules | None = None,
    gross: str = "0",
    now: datetime = AT,
) -> PlanContext:
    """A leader fill and a follower at a tenth of the leader's equity, unless told otherwise."""
    return PlanContext(
        fill=make_fill(side, qty, price),
        leader_position_before=Decimal(leader),
        leader_equity=_reading(leader_equity, 1),
        follower_equity=_reading(follower_equity, 2),
        now=now,
        follower_position_before=Decimal(follower),
        follower_gross_exposure=Decimal(gross),
        instrument=inst if inst is not None else rules(),
        settings=settings if settings is not None else SizingSettings(),
    )


def describe(result: Plan) -> list[str]:
    """The legs as short strings: "sell 0.1 reduce_only", "buy 0.2 limit 50250 IOC"."""
    out = []
    for leg in result.legs:
        text = f"{leg.side.value} {fmt(leg.qty)}"
        if leg.reduce_only:
            text += " reduce_only"
        if leg.limit_price is not None:
            text += f" {leg.order_type.value} {fmt(leg.limit_price)} {leg.time_in_force}"
        out.append(text)
    return out
