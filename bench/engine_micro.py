"""Micro benchmark of the sizing engine's CPU per order: planning a fan-out, then encoding it
for Redis. No database, no Redis: what one core spends per follower before any I/O.

    .venv/bin/python -m bench.engine_micro [--followers 10000] [--repeat 5]

Each figure is the best of ``--repeat`` runs over every follower, in chunks as the engine
plans them (best, not mean: the floor is what the code costs, the rest is the machine's noise).
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
from app.domain.plan_model import SizingSettings
from app.executors.protocol.messages import FillMessages
from app.sizing.books import LeaderBook, SubscriptionBook
from app.sizing.engine import (
    CHUNK,
    FIRST_CHUNK,
    PlannedOrder,
    SizingEngine,
    _FillInputs,
    chunk_bounds,
)
from app.sizing.equity_cache import EquityCache

NOW = datetime.now(UTC)
NONE: Any = None  # stands for the pool, connections and sessions this benchmark never uses


def setup(followers: int) -> tuple[SizingEngine, LeaderBook, _FillInputs]:
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
    inputs = _FillInputs(fill, Decimal(0), equity.leader(leader_id), NOW, messages, ids)
    return engine, LeaderBook(leader_id, subs, {}), inputs


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")  # a timing, not money
    for _ in range(repeat):
        start = time.perf_counter_ns()
        run()
        best = min(best, time.perf_counter_ns() - start)
    return best / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine, book, inputs = setup(args.followers)
    subs = book.subscriptions
    chunks = [subs[start:end] for start, end in chunk_bounds(len(subs), FIRST_CHUNK, CHUNK)]

    def plan_all() -> list[PlannedOrder]:
        orders: list[PlannedOrder] = []
        for chunk in chunks:
            orders += engine._plan(book, inputs, chunk).produced
        return orders

    orders = plan_all()
    enqueuer = Enqueuer(cast(Any, NONE), dedupe_ttl_s=604_800)
    enqueuer._enter_period()
    n = len(orders)
    planned = best_of(args.repeat, plan_all)
    encoded = best_of(args.repeat, lambda: enqueuer._encode(orders))
    print(f"{args.followers} followers, {n} orders, best of {args.repeat}, microseconds per order")
    print(f"  plan + record rows + payload   {planned / n:6.2f}")
    print(f"  encode for Redis               {encoded / n:6.2f}")
    print(f"  total                          {(planned + encoded) / n:6.2f}")


if __name__ == "__main__":
    main()
