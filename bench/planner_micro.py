"""Micro benchmark of the sizing planner: microseconds per plan() call, per scenario.

    .venv/bin/python -m bench.planner_micro [--calls 20000] [--repeat 5]

plan() runs once per follower for every leader fill, so its cost times the fan-out (up to
10,000 followers) is the sizing share of a fill's latency. Pure CPU: no database, no Redis.
Each figure is the best of ``--repeat`` runs of ``--calls`` calls on one fixed context
(best, not mean: the floor is what the code costs, the rest is the machine's noise).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from uuid import UUID

from app.domain.model import EquityReading, Fill, Side
from app.domain.planner import InstrumentRules, PlanContext, SizingMode, SizingSettings, plan

AT = datetime(2024, 11, 24, tzinfo=UTC)
SYMBOL = "BTCUSDT"
D = Decimal


def _context(
    *,
    side: Side = Side.BUY,
    qty: str = "2",
    price: str = "50000",
    leader: str = "0",
    follower: str = "0",
    leader_equity: str | None = "100000",
    follower_equity: str | None = "10000",
    settings: SizingSettings | None = None,
    rules: InstrumentRules | None = None,
    gross: str = "0",
) -> PlanContext:
    """A leader fill and a follower at a tenth of the leader's equity, unless told otherwise."""
    fill = Fill(UUID(int=1), "fill-1", SYMBOL, side, D(qty), D(price), AT, AT)
    return PlanContext(
        fill=fill,
        leader_position_before=D(leader),
        leader_equity=None if leader_equity is None else EquityReading(1, D(leader_equity), AT),
        follower_equity=(
            None if follower_equity is None else EquityReading(2, D(follower_equity), AT)
        ),
        now=AT,
        follower_position_before=D(follower),
        follower_gross_exposure=D(gross),
        instrument=rules or InstrumentRules(SYMBOL, D("0.001")),
        settings=settings or SizingSettings(),
    )


CAPPED = SizingSettings(
    max_order_notional=D("7000"),
    max_position_notional=D("20000"),
    max_leverage=D("3"),
    max_slippage=D("0.005"),
    max_equity_age_s=60.0,
)

SCENARIOS: dict[str, PlanContext] = {
    # Target mode (the default): the leader opens, the follower follows to a tenth.
    "target_open": _context(),
    "target_add": _context(qty="1", leader="2", follower="0.2"),
    "target_partial_reduce": _context(side=Side.SELL, qty="1", leader="3", follower="0.3"),
    "target_reversal": _context(side=Side.SELL, qty="5", leader="2", follower="0.2"),
    "skip_no_equity": _context(follower_equity=None),
    # Every cap set and a slippage band: clamps, an equity check and an IOC limit price.
    "caps_max_slippage": _context(
        settings=CAPPED,
        rules=InstrumentRules(SYMBOL, D("0.001"), D("0.001"), D("5"), D("0.1")),
        gross="5000",
    ),
    "per_fill_partial_reduce": _context(
        side=Side.SELL,
        qty="1",
        leader="3",
        follower="0.3",
        settings=SizingSettings(mode=SizingMode.PER_FILL),
    ),
    "fixed_multiplier_open": _context(
        settings=SizingSettings(mode=SizingMode.FIXED_MULTIPLIER, multiplier=D("0.1"))
    ),
}


def time_per_call(call: Callable[[], object], calls: int, repeat: int) -> float:
    """Return the best of ``repeat`` runs, in microseconds per call."""
    best = float("inf")  # a timing, not money: floats are fine here
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter_ns() - start) / calls / 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"plan(): best of {args.repeat} x {args.calls} calls, microseconds per call")
    for name, ctx in SCENARIOS.items():
        result = plan(ctx)  # once outside the clock: show what is being timed
        outcome = result.skip_reason or f"{len(result.legs)} leg(s)"
        us = time_per_call(partial(plan, ctx), args.calls, args.repeat)
        print(f"  {name:<24} {us:7.2f} us   {outcome}")


if __name__ == "__main__":
    main()
