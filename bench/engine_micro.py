"""Micro benchmark of the sizing engine's CPU per order: planning a fan-out, then encoding it
for Redis. No database, no Redis: what one core spends per follower before any I/O.

    .venv/bin/python -m bench.engine_micro [--followers 1000 10000] [--repeat 5]

Each figure is the best of ``--repeat`` runs over every follower, in chunks as the engine
plans them (best, not mean: the floor is what the code costs, the rest is the machine's noise).
The planning stage is measured both ways in the same run: every subscription through the
Decimal planner, and through the vector path (app.domain.vector_sizing), split into the
kernel, the Plans built from it, and the rest of the stage (explanation, payload, rows).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import uuid4

from app.dispatch.enqueue import Enqueuer
from app.domain.ids import FillOrderIds
from app.domain.model import EquityReading, Fill, Side
from app.domain.plan_model import PlanContext, SizingSettings
from app.domain.planner import plan_within, planning
from app.executors.protocol.messages import FillMessages
from app.sizing.books import LeaderBook, SubscriptionBook
from app.sizing.chunks import CHUNK, FIRST_CHUNK, chunk_bounds
from app.sizing.engine import SizingEngine
from app.sizing.equity_cache import EquityCache
from app.sizing.fill_plan import FillInputs, PlannedOrder
from app.sizing.vector_books import FillVector, build, size_fill, vector_plan

NOW = datetime.now(UTC)
NONE: Any = None  # stands for the pool, connections and sessions this benchmark never uses


def setup(followers: int) -> tuple[SizingEngine, LeaderBook, FillInputs]:
    """A leader with ``followers`` subscriptions, every equity cached, one opening fill."""
    equity = EquityCache(NONE, "", 30.0)
    leader_id = uuid4()
    equity.observe(leader_id, None, EquityReading(1, Decimal("100000"), NOW))
    subs = []
    for n in range(followers):
        sub = SubscriptionBook(uuid4(), uuid4(), SizingSettings())
        equity.observe(None, sub.follower_id, EquityReading(n + 2, Decimal(1000 + n), NOW))
        subs.append(sub)
    engine = SizingEngine(NONE, NONE, equity, order_ttl_s=30.0)
    engine._rules = {}  # every symbol on the default rules
    fill = Fill(leader_id, "f-1", "BTCUSDT", Side.BUY, Decimal("1.5"), Decimal("50000"), NOW, NOW)
    messages = FillMessages(fill, NOW, NOW + timedelta(seconds=30), equity.leader(leader_id))
    ids = FillOrderIds(leader_id, fill.fill_id)
    inputs = FillInputs(fill, Decimal(0), equity.leader(leader_id), NOW, messages, ids)
    return engine, LeaderBook(leader_id, subs, {}), inputs


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")  # a timing, not money
    for _ in range(repeat):
        start = time.perf_counter_ns()
        run()
        best = min(best, time.perf_counter_ns() - start)
    return best / 1000


def stages(followers: int, repeat: int) -> None:
    """Print the planning stage for ``followers``, planner and vector path, per order."""
    engine, book, inputs = setup(followers)
    subs = book.subscriptions
    bounds = chunk_bounds(len(subs), FIRST_CHUNK, CHUNK)
    fill = inputs.fill

    def place(sub: SubscriptionBook, symbol: str) -> Any:
        return engine._placement(book, sub, symbol)

    def sized() -> FillVector:
        vector = size_fill(
            book, fill, inputs.leader_before, inputs.leader_equity, NOW, engine._equity, place
        )
        assert vector is not None
        return vector

    def plan_all(vector: FillVector | None) -> list[PlannedOrder]:
        orders: list[PlannedOrder] = []
        for start, end in bounds:
            orders += engine._plan(book, inputs, subs[start:end], vector, start).produced
        return orders

    def planner_plans() -> None:
        with planning():
            for sub in subs:
                plan_within(
                    PlanContext(
                        fill, inputs.leader_before, inputs.leader_equity,
                        engine._equity.follower(sub.follower_id), NOW, Decimal(0), Decimal(0),
                        engine._instrument(fill.symbol), sub.settings,
                    )
                )  # fmt: skip

    def vector_plans() -> None:
        vector = sized()
        with planning():
            for index, sub in enumerate(subs):
                vector_plan(vector, index, sub)

    built = best_of(1, lambda: build(subs, fill.symbol, place, engine._equity))
    vector = sized()
    # The same orders either way, to the byte (ids are derived from the fill and subscription).
    assert plan_all(vector) == plan_all(None)
    n = len(plan_all(None))
    figures = {
        "planner: stage (plans, explanation, payload, rows)": best_of(
            repeat, lambda: plan_all(None)
        ),
        "planner: Plans only": best_of(repeat, planner_plans),
        "vector: stage (kernel, Plans, explanation, payload, rows)": best_of(
            repeat, lambda: plan_all(sized())
        ),
        "vector: kernel only (numpy, incl. equity refresh)": best_of(repeat, sized),
        "vector: kernel + Plans": best_of(repeat, vector_plans),
    }
    print(f"{followers} followers, {n} orders, best of {repeat}")
    print(f"  {'vector: columns built once per book and symbol':58} {built / 1000:8.2f} ms")
    for name, micros in figures.items():
        print(f"  {name:58} {micros / 1000:8.2f} ms  {micros / n:6.2f} us/order")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for followers in args.followers:
        stages(followers, args.repeat)
    engine, book, inputs = setup(args.followers[-1])
    subs = book.subscriptions
    chunks = [subs[start:end] for start, end in chunk_bounds(len(subs), FIRST_CHUNK, CHUNK)]

    def plan_all() -> list[PlannedOrder]:
        orders: list[PlannedOrder] = []
        for chunk in chunks:
            orders += engine._plan(book, inputs, chunk).produced
        return orders

    orders = plan_all()
    enqueuer = Enqueuer(cast(Any, NONE), dedupe_ttl_s=604_800)
    n = len(orders)
    planned = best_of(args.repeat, plan_all)
    encoded = best_of(
        args.repeat, lambda: [enqueuer._encode_call(call) for call in enqueuer._calls(orders)]
    )
    print(f"{args.followers[-1]} followers, {n} orders, best of {args.repeat}, planner path,")
    print("microseconds per order")
    print(f"  plan + record rows + payload   {planned / n:6.2f}")
    print(f"  encode for Redis               {encoded / n:6.2f}")
    print(f"  total                          {(planned + encoded) / n:6.2f}")


if __name__ == "__main__":
    main()
