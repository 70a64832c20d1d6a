"""Run every benchmark against the real service and print/write the figures.

    python -m bench [--quick] [--duration 60]
                    [--only latency,fanout,throughput,paced,instances,execution]

Uses its own database (copytrade_bench) and Redis db (12): never the service's or the tests'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import time
from uuid import UUID

import asyncpg
import uvloop
from redis.asyncio import Redis

from bench import execution, scenarios
from bench.cpu import CpuMeter, wait_until_idle
from bench.seed import Group, reset, seed_group
from bench.service import ROOT, NaiveService, Service
from bench.stats import Measurement, latency_summary, render, write_json

DATABASE_URL = os.environ.get(
    "COPYTRADE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_bench"
)
REDIS_URL = os.environ.get("COPYTRADE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
RESULTS = ROOT / "bench" / "results"


def prepare_database() -> None:
    env = {**os.environ, "COPYTRADE_DATABASE_URL": DATABASE_URL}
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "createdb.py"), DATABASE_URL], check=True, env=env
    )
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], check=True, env=env, cwd=ROOT)


async def settle(conn: asyncpg.Connection) -> None:
    """Let Postgres finish with what came before (the set-up, the previous measurement)
    before the next one: fresh statistics, the dead tuples vacuumed and the dirty pages
    written out now, rather than by autovacuum or a checkpoint in the middle of a run."""
    await conn.execute("VACUUM ANALYZE")
    # Not a superuser: the checkpoint comes when it comes.
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


def cpu_measurement(name: str, meter: CpuMeter, orders: int) -> Measurement:
    return Measurement(
        name,
        "us",
        meter.per_order_us(orders),
        notes=f"CPU time per order of each process, from /proc, over {orders:,} orders",
    )


def pct(label: str, m: Measurement) -> str:
    return f"{label}: p50 {m.ours.get('p50', 0):.2f} ms, p99 {m.ours.get('p99', 0):.2f} ms"


def feed_ids(groups: list[Group], args: argparse.Namespace) -> list[UUID]:
    """The followers watched on the feed: the first 100 of each sustained leader."""
    return [f for g in groups for f in g.followers[:100]][: args.feed]


async def paced_run(
    args: argparse.Namespace,
    pool: asyncpg.Pool,
    service: Service,
    naive: NaiveService,
    groups: list[Group],
    naive_groups: list[Group],
    watchers: scenarios.FeedWatchers,
    offered: float,
) -> list[Measurement]:
    """One open-loop run at ``offered`` orders/s, ours then the baseline's."""
    async with pool.acquire() as conn:
        await settle(conn)
    tag = f"pace{offered:.0f}-"
    watchers.samples.clear()
    rate, samples = await scenarios.paced(
        service.ws_url, groups, offered, min(args.duration, 30.0), tag=tag
    )
    await asyncio.sleep(1.0)  # the last orders' feed messages
    feed = list(watchers.samples)
    _, base = await scenarios.paced(naive.ws_url, naive_groups, offered, 3.0, tag=tag)
    m = Measurement(
        f"paced {offered:,.0f} orders/s",
        "ms",
        {**latency_summary(samples), "orders/s": rate},
        latency_summary(base),
        "open loop, 10 leaders x 1,000: fill due -> ack (committed and enqueued);"
        " baseline over 3 s at the same offered rate",
    )
    print(pct(f"paced {offered:,.0f}", m), flush=True)
    return [
        m,
        Measurement(
            f"feed during paced {offered:,.0f}",
            "ms",
            latency_summary(feed),
            notes="order created -> received on the websocket",
        ),
    ]


async def main(args: argparse.Namespace) -> list[Measurement]:
    if args.only == "execution":
        return await execution.run(min(args.fills, 200), args.accounts, args.exec_fills)
    dsn = DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=12)
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    async with pool.acquire() as conn:
        await reset(conn)
        single = await seed_group(conn, "latency", 1)
        fan_1k = await seed_group(conn, "fan1k", 1_000)
        fan_10k = await seed_group(conn, "fan10k", 10_000)
        sustained = [await seed_group(conn, f"tp{i}", 1_000) for i in range(10)]
        naive_single = await seed_group(conn, "n-latency", 1)
        naive_1k = await seed_group(conn, "n-fan1k", 1_000)
        naive_10k = await seed_group(conn, "n-fan10k", 10_000)
        naive_tp = [await seed_group(conn, f"ntp{i}", 1_000) for i in range(10)]
        await settle(conn)
    service = Service(DATABASE_URL, REDIS_URL, RESULTS / "service.log")
    await service.start()
    assert service.process is not None
    waited = await wait_until_idle(service.process.pid)
    print(f"service settled {waited:.1f} s after ready", flush=True)
    meter = CpuMeter([service.process.pid])
    naive = NaiveService(dsn, REDIS_URL, RESULTS / "naive.log")
    await naive.start()
    results: list[Measurement] = []
    only = set(args.only.split(",")) if args.only else None
    try:
        if not only or "latency" in only:
            ours = await scenarios.latency(service.ws_url, redis, single, args.fills)
            base = await scenarios.latency(naive.ws_url, redis, naive_single, args.fills // 4)
            m = Measurement(
                "latency, 1 follower",
                "ms",
                latency_summary(ours),
                latency_summary(base),
                "frame sent -> order readable in the stream",
            )
            results.append(m)
            print(pct("latency", m), flush=True)
            paced_s = min(args.duration, 60.0)
            ours = await scenarios.latency_paced(service.ws_url, redis, single, paced_s)
            base = await scenarios.latency_paced(naive.ws_url, redis, naive_single, paced_s / 4)
            m = Measurement(
                "latency, 1 follower, 50 fills/s",
                "ms",
                latency_summary(ours),
                latency_summary(base),
                "frame sent -> order readable in the stream, a fill every 20 ms for"
                f" {paced_s:.0f} s (baseline {paced_s / 4:.0f} s)",
            )
            results.append(m)
            print(pct("latency, 50 fills/s", m), flush=True)
        if not only or "fanout" in only:
            async with pool.acquire() as conn:
                await settle(conn)
            for label, group, naive_group, naive_fills in (
                ("fan-out 1,000", fan_1k, naive_1k, 3),
                ("fan-out 10,000", fan_10k, naive_10k, 1),
            ):
                meter.start()
                ours = await scenarios.fanout(service.ws_url, redis, group, args.fan_fills)
                meter.stop()
                # The two warm-up fills are sized and counted too.
                fanned = (args.fan_fills + 2) * len(group.subscriptions)
                base = await scenarios.fanout(
                    naive.ws_url, redis, naive_group, naive_fills, warmup=0
                )
                m = Measurement(
                    label,
                    "ms",
                    latency_summary(ours),
                    latency_summary(base),
                    "frame sent -> ack (all orders committed and in their streams);"
                    f" baseline over {naive_fills} fill(s)",
                )
                results += [m, cpu_measurement(f"CPU/order, {label}", meter, fanned)]
                print(pct(label, m), flush=True)
        if not only or "throughput" in only:
            async with pool.acquire() as conn:
                await settle(conn)
            watchers = scenarios.FeedWatchers(
                service.ws_url, service.env["COPYTRADE_ADMIN_TOKEN"], feed_ids(sustained, args)
            )
            await watchers.start()
            meter.start()
            rate, samples, elapsed = await scenarios.throughput(
                service.ws_url, sustained, args.duration
            )
            meter.stop()
            # The clocked orders and each leader's acknowledged warm-up fill.
            sustained_orders = round(rate * elapsed) + sum(len(g.subscriptions) for g in sustained)
            await asyncio.sleep(1.0)
            await watchers.stop()
            base_rate, base_samples, _ = await scenarios.throughput(
                naive.ws_url, naive_tp, min(args.duration, 10.0)
            )
            results += [
                Measurement(
                    "sustained, 10x1,000",
                    "orders/s",
                    {"rate": rate},
                    {"rate": base_rate},
                    lower_is_better=False,
                ),
                Measurement(
                    "sustained fill latency",
                    "ms",
                    latency_summary(samples),
                    latency_summary(base_samples),
                    "frame sent -> ack, 10 leaders at once",
                ),
                Measurement(
                    f"feed, {args.feed} sockets",
                    "ms",
                    latency_summary(watchers.samples),
                    notes="order created -> received on the websocket, during the sustained run",
                ),
                cpu_measurement("CPU/order, sustained", meter, sustained_orders),
            ]
            print(f"throughput: {rate:,.0f} orders/s", flush=True)
        if not only or "paced" in only:
            # The same leaders at fixed offered rates: the latency a follower sees at that
            # load, rather than how far a saturated service queues. Rates the machine carries,
            # then the target, beyond it. The feed sockets watch as in the sustained run.
            watchers = scenarios.FeedWatchers(
                service.ws_url, service.env["COPYTRADE_ADMIN_TOKEN"], feed_ids(sustained, args)
            )
            await watchers.start()
            try:
                for offered in args.paced_rates:
                    results += await paced_run(args, pool, service, naive, sustained, naive_tp,
                                               watchers, offered)  # fmt: skip
            finally:
                await watchers.stop()
        if not only or "instances" in only:
            # The documented way onto a second core: a second instance of the service on
            # the same database and Redis, each leader's socket on one of them.
            async with pool.acquire() as conn:
                await settle(conn)
            second = Service(DATABASE_URL, REDIS_URL, RESULTS / "service-2.log")
            await second.start()
            try:
                two_rate, two_samples, _ = await scenarios.throughput(
                    [service.ws_url, second.ws_url], sustained, args.duration, tag="tq"
                )
            finally:
                await second.stop()
            results += [
                Measurement(
                    "sustained, 2 instances",
                    "orders/s",
                    {"rate": two_rate},
                    lower_is_better=False,
                    notes="the sustained run with a second service process; leaders alternate",
                ),
                Measurement(
                    "2 instances fill latency",
                    "ms",
                    latency_summary(two_samples),
                    notes="frame sent -> ack, 10 leaders at once, 5 on each instance",
                ),
            ]
            print(f"throughput, 2 instances: {two_rate:,.0f} orders/s", flush=True)
    finally:
        await service.stop()
        await naive.stop()
        await pool.close()
        await redis.aclose()
    if not only or "execution" in only:
        # Last: it resets the bench database for its own followers and venue accounts.
        results += await execution.run(min(args.fills, 200), args.accounts, args.exec_fills)
    return results


def rates(text: str) -> list[float]:
    """``--paced-rates``: positive numbers, comma separated."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of numbers: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"rates must be positive: {text!r}")
    return values


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--fills", type=int, default=2000, help="latency fills")
    parser.add_argument("--fan-fills", type=int, default=10, help="fan-out fills per size")
    parser.add_argument("--duration", type=float, default=60.0, help="throughput seconds")
    parser.add_argument("--feed", type=int, default=1000, help="feed websocket subscribers")
    parser.add_argument(
        "--paced-rates",
        type=rates,
        default=rates("5000,10000,20000"),
        help="offered orders/s of the paced runs, a comma list",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma list: latency,fanout,throughput,paced,instances,execution",
    )
    parser.add_argument("--accounts", type=int, default=1000, help="execution fan-out accounts")
    parser.add_argument("--exec-fills", type=int, default=3, help="execution fan-out fills")
    parser.add_argument("--quick", action="store_true", help="short run for a smoke check")
    args = parser.parse_args()
    if args.quick:
        args.fills, args.fan_fills, args.duration, args.feed = 200, 3, 5.0, 100
        args.accounts, args.exec_fills = 100, 2
    prepare_database()
    started = time.time()
    results = uvloop.run(main(args))
    print()
    print(render(results))
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "args": vars(args),
    }
    out = RESULTS / "latest.json"
    write_json(out, results, meta)
    print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    cli()
