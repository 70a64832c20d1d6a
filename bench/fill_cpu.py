"""The service's CPU per single-follower fill, in-process, for the ways of sizing it in turn.

    .venv/bin/python -m bench.fill_cpu [--fills 400] [--rounds 3]

A Runtime is opened (pools and caches, no background loop, no websocket) on the bench's
database, with one leader and one follower; fills go one after another through
``Pipeline.handle_fill`` (sized, recorded in Postgres, enqueued in Redis). Each round times
every fill by the event loop thread's CPU (``time.thread_time``), which a loaded machine
inflates less than the wall clock, and the rounds alternate between the sizing variants in
the same process, so that each sees the same load:

- ``planner``: the Decimal planner alone (``COPYTRADE_VECTOR_SIZING=false``);
- ``vector``: the vector kernel whatever the book's width (``vector_min_rows`` 1);
- ``default``: as the service runs (the planner below ``vector_books.MIN_ROWS``).

Uses the bench's database and Redis db (COPYTRADE_BENCH_DATABASE_URL, COPYTRADE_BENCH_REDIS_URL)
and resets them, as ``python -m bench`` does.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
import uvloop

from app.domain.model import Fill, Side
from app.logging import configure_logging
from app.runtime import Runtime
from app.settings import Settings
from app.sizing.vector_books import MIN_ROWS
from bench.__main__ import DATABASE_URL, REDIS_URL, prepare_database
from bench.seed import reset, seed_group

WARM_UP = 30
# name -> (vector path on, its minimum book width)
VARIANTS = {"planner": (False, MIN_ROWS), "vector": (True, 1), "default": (True, MIN_ROWS)}


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def run_round(runtime: Runtime, leader_id: UUID, tag: str, fills: int) -> list[float]:
    """``WARM_UP`` fills, then ``fills`` timed ones: their thread CPU each, in seconds."""
    spent: list[float] = []
    for n in range(WARM_UP + fills):
        now = datetime.now(UTC)
        side = Side.BUY if n % 2 == 0 else Side.SELL  # the same order size every time
        fill = Fill(leader_id, f"{tag}-{n}", "BTCUSDT", side, Decimal(1), Decimal(50000), now, now)
        started = time.thread_time()
        result = await runtime.pipeline.handle_fill(fill)
        if n >= WARM_UP:
            spent.append(time.thread_time() - started)
        if result.status != "accepted" or len(result.orders) != 1:
            raise RuntimeError(f"fill {fill.fill_id}: {result}")
    return spent


async def main(args: argparse.Namespace) -> None:
    dsn = DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await reset(conn)
        group = await seed_group(conn, "fill-cpu", 1)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    configure_logging("warning", json_lines=True)
    settings = Settings(
        database_url=DATABASE_URL, redis_url=REDIS_URL, admin_token="bench-admin-token-0123456789"
    )
    runtime = Runtime(settings)
    await runtime.open()
    try:
        await runtime.redis.flushdb()
        await runtime.equity.reload()
        for round_no in range(args.rounds):
            for name, (vector, min_rows) in VARIANTS.items():
                runtime.sizing.vector, runtime.sizing.vector_min_rows = vector, min_rows
                tag = f"{name}-{round_no}-{time.time()}"
                spent = sorted(await run_round(runtime, group.leader_id, tag, args.fills))
                p50, p10 = quantile(spent, 0.5) * 1e6, quantile(spent, 0.1) * 1e6
                mean = sum(spent) / len(spent) * 1e6
                print(
                    f"round {round_no} {name:8} thread CPU per fill: p50 {p50:5.0f} us,"
                    f" p10 {p10:5.0f} us, mean {mean:5.0f} us (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    finally:
        await runtime.stop()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=400, help="timed fills per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prepare_database()
    uvloop.run(main(args))


if __name__ == "__main__":
    cli()
