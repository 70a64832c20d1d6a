"""Subscription positions: today's row per (subscription, symbol) against the candidate layouts,
on one leader fanned out to N followers, each fill in its own transaction.

    python -m bench.positions_layout [--followers 10000] [--fills 20]

Uses its own scratch schema ``positions_layout`` in the bench database
(COPYTRADE_BENCH_DATABASE_URL), dropped at the end. Prints, per layout: wall time per fill
(statement + commit, the median), the backend's CPU per fill, WAL bytes per fill
(pg_current_wal_lsn before and after), and the read cost of a book load (every position of
the leader) and of one subscription's position (the API's and the dashboard's read).

- rows:   today, ``INSERT ... ON CONFLICT DO UPDATE`` of N rows (fillfactor 50).
- vector: one row per (leader, symbol), subscription ids uuid[] and quantities numeric[],
          merged in SQL under the row's lock; the ids array is only rewritten when a
          subscription is appended, so its TOAST value is carried over otherwise. The
          statement, function and view are the service's (migration 0023).
- log:    one row per fill per (leader, symbol) holding the arrays of (subscription, delta),
          folded by readers (and by a periodic checkpoint, not measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from app.db.repositories import subscription_positions

DATABASE_URL = os.environ.get(
    "COPYTRADE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_bench"
)
SEP, NUL = "\x1f", "\x1e"
LEADER = uuid.UUID(int=1)
SYMBOL = "BTCUSDT"

SCHEMA = """
DROP SCHEMA IF EXISTS positions_layout CASCADE;
CREATE SCHEMA positions_layout;
SET search_path = positions_layout;
CREATE TABLE subscription (id uuid PRIMARY KEY, leader_id uuid NOT NULL, status text NOT NULL);
CREATE INDEX ON subscription (leader_id);
CREATE TABLE sp (subscription_id uuid, symbol varchar(48), qty numeric NOT NULL,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (subscription_id, symbol)) WITH (fillfactor = 50);
CREATE TABLE subscription_position_vector (
    leader_id uuid, symbol varchar(48), subscription_ids uuid[] NOT NULL, qtys numeric[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (leader_id, symbol)
) WITH (fillfactor = 50);
CREATE TABLE subscription_position_correction (
    subscription_id uuid, symbol varchar(48), qty numeric NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (subscription_id, symbol));
CREATE TABLE plog (id bigserial PRIMARY KEY, leader_id uuid NOT NULL, symbol varchar(48) NOT NULL,
                   sids uuid[] NOT NULL, deltas numeric[] NOT NULL);
"""

ROWS_WRITE = """
INSERT INTO sp AS p (subscription_id, symbol, qty, updated_at)
SELECT u.sid, u.symbol, u.qty, now()
  FROM unnest(string_to_array($1, E'\\x1f', E'\\x1e')::uuid[],
              string_to_array($2, E'\\x1f', E'\\x1e')::varchar[],
              string_to_array($3, E'\\x1f', E'\\x1e')::numeric[]) AS u(sid, symbol, qty)
ON CONFLICT (subscription_id, symbol) DO UPDATE SET qty = p.qty + EXCLUDED.qty, updated_at = now()
"""
# What the fill path runs (app.db.repositories.fills.RECORD_POSITIONS).
VECTOR_WRITE = subscription_positions.move_vectors(
    "$4",
    "unnest(string_to_array($1, E'\\x1f', E'\\x1e')::uuid[],"
    " string_to_array($2, E'\\x1f', E'\\x1e')::varchar[],"
    " string_to_array($3, E'\\x1f', E'\\x1e')::numeric[]) AS u(sid, symbol, qty)",
)
LOG_WRITE = """
INSERT INTO plog (leader_id, symbol, sids, deltas)
SELECT $4, u.symbol, array_agg(u.sid), array_agg(u.qty)
  FROM unnest(string_to_array($1, E'\\x1f', E'\\x1e')::uuid[],
              string_to_array($2, E'\\x1f', E'\\x1e')::varchar[],
              string_to_array($3, E'\\x1f', E'\\x1e')::numeric[]) AS u(sid, symbol, qty)
 GROUP BY u.symbol
"""
LIVE = "s.leader_id = $1 AND s.status IN ('active', 'close_only')"
ROWS_BOOK = f"SELECT p.subscription_id, p.symbol, p.qty FROM sp p JOIN subscription s ON s.id = p.subscription_id WHERE {LIVE}"  # noqa: E501
VECTOR_BOOK = subscription_positions.LOAD_BOOK_POSITIONS
LOG_BOOK = f"""
SELECT u.sid, l.symbol, sum(u.delta) FROM plog l
 CROSS JOIN LATERAL unnest(l.sids, l.deltas) AS u(sid, delta)
  JOIN subscription s ON s.id = u.sid WHERE l.leader_id = $1 AND {LIVE} GROUP BY u.sid, l.symbol"""
ROWS_ONE = "SELECT symbol, qty FROM sp WHERE subscription_id = $1"
VECTOR_ONE = "SELECT symbol, qty FROM subscription_position WHERE subscription_id = $1"
LOG_ONE = """
SELECT l.symbol, sum(l.deltas[array_position(l.sids, s.id)])
  FROM subscription s JOIN plog l ON l.leader_id = s.leader_id
 WHERE s.id = $1 AND s.id = ANY(l.sids) GROUP BY l.symbol"""


def load_migration() -> Any:
    path = next(Path(__file__).parent.parent.glob("migrations/versions/*_position_vectors.py"))
    spec = importlib.util.spec_from_file_location("position_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def backend_cpu_ms(pid: int) -> float:
    """User + system CPU of a Postgres backend on this machine so far, in ms."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def joined(values: list[object]) -> str:
    return SEP.join(NUL if v is None else str(v) for v in values)


async def timed(fn: Callable[[], Awaitable[object]], n: int) -> float:
    """The median of ``n`` calls, in ms."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=10000)
    parser.add_argument("--fills", type=int, default=20)
    args = parser.parse_args()
    url = DATABASE_URL.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url, server_settings={"search_path": "positions_layout"})
    await conn.execute(SCHEMA)
    # The function and the view as migration 0023 makes them.
    migration = load_migration()
    await conn.execute(migration.MERGE)
    await conn.execute(migration.VIEW)
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    rng = random.Random(7)
    subs = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(args.followers)]
    await conn.executemany(
        "INSERT INTO subscription VALUES ($1, $2, 'active')", [(s, LEADER) for s in subs]
    )
    sid_text = joined(list(subs))
    sym_text = joined([SYMBOL] * len(subs))

    # Made beforehand: the measurement is Postgres's, not the text's.
    texts = [joined([Decimal(rng.randint(-5000, 5000)) / 1000 for _ in subs]) for _ in range(8)]
    turn = iter(range(1 << 30))

    def deltas() -> str:
        return texts[next(turn) % len(texts)]

    layouts = {"rows": ROWS_WRITE, "vector": VECTOR_WRITE, "log": LOG_WRITE}
    reads = {"rows": (ROWS_BOOK, ROWS_ONE), "vector": (VECTOR_BOOK, VECTOR_ONE),
             "log": (LOG_BOOK, LOG_ONE)}  # fmt: skip
    print(f"{args.followers} followers, {args.fills} fills each; load {os.getloadavg()}")
    print(f"{'layout':8} {'first ms':>9} {'ms/fill':>8} {'WAL B/fill':>11} {'book ms':>8} "
          f"{'one ms':>7} {'pg CPU ms/fill':>14}")  # fmt: skip
    for name, sql in layouts.items():
        extra: list[object] = [] if name == "rows" else [LEADER]
        await conn.execute("CHECKPOINT")

        async def fill(sql: str = sql, extra: list[object] = extra) -> None:
            async with conn.transaction():
                await conn.execute(sql, sid_text, sym_text, deltas(), *extra)

        first = await timed(fill, 1)  # creates the rows / appends every subscription
        await conn.execute("CHECKPOINT")
        await timed(fill, 1)  # the full page images after the checkpoint
        before = await conn.fetchval("SELECT pg_current_wal_lsn()")
        cpu = backend_cpu_ms(pid)
        ms = await timed(fill, args.fills)
        cpu = (backend_cpu_ms(pid) - cpu) / args.fills
        after = await conn.fetchval("SELECT pg_current_wal_lsn()")
        wal = await conn.fetchval("SELECT pg_wal_lsn_diff($1, $2)", after, before)
        book_sql, one_sql = reads[name]
        await conn.execute("VACUUM ANALYZE")

        async def read_book(q: str = book_sql) -> object:
            return await conn.fetch(q, LEADER)

        async def read_one(q: str = one_sql) -> object:
            return await conn.fetch(q, subs[len(subs) // 2])

        book = await timed(read_book, 10)
        one = await timed(read_one, 50)
        per_fill = wal / args.fills
        print(
            f"{name:8} {first:9.1f} {ms:8.1f} {per_fill:11.0f} {book:8.1f} {one:7.2f} {cpu:14.1f}"
        )
    await conn.execute("DROP SCHEMA positions_layout CASCADE")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
