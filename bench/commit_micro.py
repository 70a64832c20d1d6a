"""Micro benchmark of the commit stage alone: one fill's orders, position moves and status
changes written to Postgres and committed, as the engine writes them (one statement up to
FIRST_CHUNK subscriptions, else chunks of one transaction), with the plans made beforehand.

    .venv/bin/python -m bench.commit_micro [--followers 1 250 1000 10000] [--repeat 7]

Uses COPYTRADE_BENCH_DATABASE_URL (migrated; its fill tables are emptied). Per size: the wall
time of the write (median and best of ``--repeat`` fills), the CPU of this process and of the
Postgres backend per order, the WAL written per order and the size of an order row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from decimal import Decimal
from typing import Any

import asyncpg

from app.db.repositories import fills
from app.db.small_pool import SmallPool
from app.domain.ids import FillOrderIds
from app.domain.model import Fill, Side
from app.executors.protocol.messages import FillMessages
from app.sizing.chunks import CHUNK, FIRST_CHUNK, chunk_bounds, record_in_chunks
from app.sizing.fill_plan import Batch, FillInputs
from bench.cpu import cpu_seconds
from bench.engine_micro import NOW, setup

TABLES = "leader_fill, follower_order, subscription_position, leader_position, leader CASCADE"


def dsn() -> str:
    url = os.environ.get("COPYTRADE_BENCH_DATABASE_URL", "")
    if not url:
        raise SystemExit("set COPYTRADE_BENCH_DATABASE_URL")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# The same measurement runs on the code before lean order rows (git archive of that commit,
# this file copied in) to compare: the write functions took other arguments there.
LEAN = hasattr(fills, "FillShared")


def _shared(inputs: FillInputs, delta: Decimal) -> Any:
    from app.sizing.fill_plan import leader_positions  # lean code only

    low, high = leader_positions(inputs.fill, inputs.leader_before)
    return fills.FillShared("trade", delta, NOW, NOW, Decimal(100000), 1, low, high)


async def write_one(
    conn: asyncpg.Connection, fill: Fill, inputs: FillInputs, delta: Decimal, batch: Batch, seq: int
) -> Any:
    if LEAN:
        shared = _shared(inputs, delta)
        return await fills.record_fill(
            conn, fill, shared, batch.rows, batch.moves, batch.changes, seq
        )
    old: Any = fills.record_fill
    return await old(
        conn, fill, "trade", NOW, NOW, batch.rows, delta, batch.moves, batch.changes, seq
    )


async def write_chunks(
    pool: SmallPool,
    inputs: FillInputs,
    delta: Decimal,
    seq: int,
    started: float,
    bounds: list[tuple[int, int]],
    plan: Any,
) -> Any:
    if LEAN:
        shared = _shared(inputs, delta)
        recorded, _, _ = await record_in_chunks(pool, inputs, shared, seq, started, bounds, plan)
    else:
        old: Any = record_in_chunks
        recorded, _ = await old(pool, inputs, "trade", NOW, delta, seq, started, bounds, plan)
    return recorded


async def measure(followers: int, repeat: int) -> dict[str, float]:
    engine, book, template = setup(followers)
    leader_id = book.leader_id
    admin = await asyncpg.connect(dsn())
    await admin.execute(f"TRUNCATE {TABLES}")
    await admin.execute(
        "INSERT INTO leader (id, name, feed_kind) VALUES ($1, 'bench', 'push')", leader_id
    )
    pool = SmallPool(lambda: asyncpg.connect(dsn()), 1)
    async with pool.connection() as conn:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    seq = 0
    walls, service, postgres, wal = [], [], [], []
    orders = 0
    subs = book.subscriptions
    for n in range(repeat + 1):  # the first one warms the connection's statements
        side = Side.BUY if n % 2 == 0 else Side.SELL
        fill = Fill(leader_id, f"f-{n}", "BTCUSDT", side, Decimal("1.5"), Decimal(50000), NOW, NOW)
        before = Decimal("1.5") if n % 2 else Decimal(0)
        messages = FillMessages(fill, NOW, NOW, template.leader_equity)
        ids = FillOrderIds(leader_id, fill.fill_id)
        inputs = FillInputs(fill, before, template.leader_equity, NOW, messages, ids)
        bounds = chunk_bounds(len(subs), FIRST_CHUNK, CHUNK)
        single = len(subs) <= FIRST_CHUNK
        batches = (
            [engine._plan(book, inputs, subs)]
            if single
            else [engine._plan(book, inputs, subs[s:e], None, s) for s, e in bounds]
        )
        orders = sum(len(b.rows.id) for b in batches)
        delta = Decimal("1.5") if side is Side.BUY else Decimal("-1.5")
        lsn = await admin.fetchval("SELECT pg_current_wal_lsn()")
        backend_cpu = cpu_seconds(backend)
        cpu = time.process_time()
        started = time.perf_counter()
        if single:
            async with pool.connection() as conn:
                recorded = await write_one(conn, fill, inputs, delta, batches[0], seq)
        else:
            planned = iter(batches)

            def plan(_start: int, _end: int, planned: Any = planned) -> Batch:
                batch: Batch = next(planned)
                return batch

            recorded = await write_chunks(pool, inputs, delta, seq, started, bounds, plan)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        backend_cpu = cpu_seconds(backend) - backend_cpu
        written = await admin.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)", lsn
        )
        assert recorded.seq is not None
        assert recorded.fill_pk is not None
        seq = recorded.seq
        if n:
            walls.append(wall)
            service.append(cpu)
            postgres.append(backend_cpu)
            wal.append(float(written))
    row = await admin.fetchval(
        "SELECT avg(pg_column_size(o.*)) FROM (SELECT * FROM follower_order LIMIT 1000) o"
    )
    await admin.close()
    return {
        "orders": orders,
        "wall_median_ms": statistics.median(walls) * 1000,
        "wall_best_ms": min(walls) * 1000,
        "service_us_per_order": statistics.median(service) / orders * 1e6,
        "postgres_us_per_order": statistics.median(postgres) / orders * 1e6,
        "wal_bytes_per_order": statistics.median(wal) / orders,
        "row_bytes": float(row),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, nargs="+", default=[1, 250, 1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, best/median of {args.repeat} fills")
    for followers in args.followers:
        f = await measure(followers, args.repeat)
        print(
            f"{followers:>6} followers: write+commit median {f['wall_median_ms']:7.2f} ms"
            f" (best {f['wall_best_ms']:7.2f}), CPU per order: service"
            f" {f['service_us_per_order']:5.2f} us, postgres {f['postgres_us_per_order']:5.2f} us;"
            f" WAL {f['wal_bytes_per_order']:6.0f} B/order, row {f['row_bytes']:4.0f} B"
        )


if __name__ == "__main__":
    asyncio.run(main())
