"""Follower execution, measured: the real service (every role) places orders on a loopback
Binance USD-M venue (the demo's, in this process, stamping when each order arrives), against
the naive way in the same run.

    python -m bench.execution [--fills 200] [--accounts 1000] [--fan-fills 3]

- latency, 1 follower, a fill every 20 ms: push frame sent -> the order received by the
  venue (p50, p99), with the split at the follower's order stream (frame -> entry, entry ->
  venue);
- fan-out, N accounts: one fill -> the last of its N orders received by the venue.

Ours: the execute role's executors (the order socket, ws-fapi ``order.place``). The naive
way (``bench.naive_execution``, its own process): the same service sizes and enqueues the
orders of followers without an account; it reads their streams and places each order in
turn over a new connection with one signed REST request.

Uses the bench's database and Redis db (COPYTRADE_BENCH_DATABASE_URL, _REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiohttp import web
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.demo.venue import WS_FAPI_PATH, DemoVenue
from app.dispatch.keys import order_stream
from app.security.crypto import generate_key
from bench.cpu import wait_until_idle
from bench.service import ROOT, Service
from bench.stats import Measurement, latency_summary

DATABASE_URL = os.environ.get(
    "COPYTRADE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_bench"
)
REDIS_URL = os.environ.get("COPYTRADE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ADMIN = {"Authorization": "Bearer bench-admin-token-0123456789"}
# The venue listens on this many ports: the client applies Binance's per-host request weight
# (2,400 a minute; an account read weighs 35), so a thousand accounts on one port would take
# a quarter of an hour to be read before their first order.
VENUE_PORTS = 32
EQUITY = "1000000"
SEED_CONCURRENCY = 8
# Between one follower's fills: the previous order's report and account read are the same
# process's work, and a fill every 20 ms is the main bench's paced latency rate.
GAP_S = 0.02


class TimedVenue(DemoVenue):
    """The demo venue, noting when each client order id first arrives (REST or socket).

    It pushes nothing on the user stream: every account here shares the demo's one key and
    listen key, so each order's events would reach all N accounts (N squared pushes and
    position writes per fill, where a real venue sends each account its own). Orders are
    answered FILLED (``RESULT``), and each account reads its position over REST after a fill.
    """

    def __init__(self) -> None:
        super().__init__({"BTCUSDT": Decimal("50000")}, Decimal(EQUITY))
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def _place(self, q: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        self.arrived.setdefault(q.get("newClientOrderId", ""), time.perf_counter())
        self.changed.set()
        return await super()._place(q)

    async def _push(self, order: dict[str, Any], symbol: str) -> None:
        return None

    async def until(self, count: int) -> float:
        while len(self.arrived) < count:
            self.changed.clear()
            await self.changed.wait()
        return max(self.arrived.values())


@asynccontextmanager
async def serve_ports(venue: DemoVenue, count: int) -> AsyncIterator[list[int]]:
    runner = web.AppRunner(venue.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    for _ in range(count):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield [int(address[1]) for address in runner.addresses]
    finally:
        await venue.close()
        await runner.cleanup()


@dataclass
class Leader:
    id: str
    push_token: str
    followers: list[str]


class Seeder:
    def __init__(self, http: httpx.AsyncClient, venue: TimedVenue, ports: list[int]) -> None:
        self.http = http
        self.venue = venue
        self.ports = ports

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(5):  # a 5xx (Postgres out of connections) is tried again
            response = await self.http.request(method, path, headers=ADMIN, **kw)
            if response.status_code < 500:
                break
            await asyncio.sleep(1 + attempt)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def leader(self, name: str, followers: int, *, accounts: bool) -> Leader:
        """A push leader and its followers: on venue accounts, or (naive) with posted equity."""
        body = await self.call("POST", "/v1/leaders", json={"name": name, "feed": {"kind": "push"}})
        await self.call("POST", f"/v1/leaders/{body['id']}/equity", json={"equity": "10000000"})
        slots = asyncio.Semaphore(SEED_CONCURRENCY)

        async def one(n: int) -> str:
            async with slots:
                follower = await self.call("POST", "/v1/followers", json={"name": f"{name}-{n}"})
                fid: str = follower["id"]
                await self.call(
                    "POST",
                    f"/v1/followers/{fid}/subscriptions",
                    json={"leader_id": body["id"], "multiplier": "1"},
                )
                if accounts:
                    port = self.ports[n % len(self.ports)]
                    await self.call("PUT", f"/v1/followers/{fid}/account", json=self.account(port))
                else:
                    await self.call("POST", f"/v1/followers/{fid}/equity", json={"equity": EQUITY})
                return fid

        ids = list(await asyncio.gather(*(one(n) for n in range(followers))))
        return Leader(body["id"], body["push_token"], ids)

    def account(self, port: int) -> dict[str, str]:
        return {
            "kind": "binance-usdm",
            "api_key": self.venue.api_key,
            "api_secret": self.venue.api_secret,
            "rest_url": f"http://127.0.0.1:{port}",
            "ws_url": f"ws://127.0.0.1:{port}",
            "ws_api_url": f"ws://127.0.0.1:{port}{WS_FAPI_PATH}",
        }

    async def until_ready(self, followers: list[str]) -> None:
        """Every account read from the venue (its first order waits for that)."""
        slots = asyncio.Semaphore(SEED_CONCURRENCY)

        async def one(follower_id: str) -> None:
            async with slots:
                for _ in range(6000):
                    path = f"/v1/followers/{follower_id}/account"
                    if (await self.call("GET", path))["status"] == "ready":
                        return
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"account of {follower_id} never ready")

        await asyncio.gather(*(one(f) for f in followers))


def prepare() -> None:
    env = {**os.environ, "COPYTRADE_DATABASE_URL": DATABASE_URL}
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/createdb.py"), DATABASE_URL], env=env, check=True
    )
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, cwd=ROOT)


async def reset() -> None:
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    conn = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(
        "TRUNCATE leader, follower, instrument, equity_snapshot, subscription, follower_order,"
        " leader_fill, subscription_position_vector, subscription_position_correction,"
        " leader_position, service_instance CASCADE"
    )
    await conn.close()


@asynccontextmanager
async def naive_executor(venue: TimedVenue, port: int, followers: list[str]) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.naive_execution", "--redis-url", REDIS_URL,
        "--rest-url", f"http://127.0.0.1:{port}", "--api-key", venue.api_key,
        "--api-secret", venue.api_secret, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("".join(f"{f}\n" for f in followers).encode())
    await process.stdin.drain()
    process.stdin.close()
    if (await asyncio.wait_for(process.stdout.readline(), 30)).strip() != b"ready":
        raise RuntimeError("the naive executor did not start")
    try:
        yield
    finally:
        process.kill()
        await process.wait()


class Stamps:
    """When each order entered a follower's stream (XREAD beside the consumers)."""

    def __init__(self, redis: Redis, follower_id: str) -> None:
        self.redis = redis
        self.key = order_stream(follower_id)
        self.at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        last: bytes | str = "0-0"
        while True:
            batch: Any = await self.redis.xread({self.key: last}, block=1000)
            for _key, entries in batch:
                for entry_id, fields in entries:
                    last = entry_id
                    self.at[json.loads(fields[b"order"])["order_id"]] = time.perf_counter()

    def __enter__(self) -> Stamps:
        self._task = asyncio.create_task(self._watch())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def fills(
    ws_url: str,
    leaders: list[Leader],
    venue: TimedVenue,
    count: int,
    warm: int,
    settle_pid: int | None = None,
) -> list[tuple[list[float], list[tuple[float, str]]]]:
    """Send ``warm + count`` fills to each leader, the leaders taking turns (so that each
    sees the machine's load alike); per leader, the sample of each measured fill (frame sent
    -> the last of its orders at the venue) and (sent, client id) of each single order."""
    out: list[tuple[list[float], list[tuple[float, str]]]] = [([], []) for _ in leaders]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                connect(
                    f"{ws_url}/v1/leaders/{leader.id}/fills/ws",
                    additional_headers={"Authorization": f"Bearer {leader.push_token}"},
                )
            )
            for leader in leaders
        ]
        for n in range(warm + count):
            for leader, ws, (samples, sent) in zip(leaders, sockets, out, strict=True):
                side = "buy" if n % 2 == 0 else "sell"
                frame = {"type": "fill", "fill_id": f"{leader.id[:8]}-{n}", "symbol": "BTCUSDT",
                         "side": side, "qty": "1", "price": "50000"}  # fmt: skip
                per_fill = len(leader.followers)
                before = set(venue.arrived) if per_fill == 1 else None
                expected = len(venue.arrived) + per_fill
                started = time.perf_counter()
                await ws.send(json.dumps(frame))
                last = await asyncio.wait_for(venue.until(expected), 120)
                await ws.recv()
                if n >= warm:
                    samples.append(last - started)
                    if before is not None:
                        (client_id,) = set(venue.arrived) - before
                        sent.append((started, client_id))
                if settle_pid is not None:  # the accounts' aftermath (reports, reads) done
                    await wait_until_idle(settle_pid, busy_share=0.25, limit_s=30)
                else:
                    await asyncio.sleep(GAP_S)
    return out


async def run(fills_n: int, accounts: int, fan_fills: int) -> list[Measurement]:
    await reset()
    venue = TimedVenue()
    redis = Redis.from_url(REDIS_URL)
    async with serve_ports(venue, VENUE_PORTS) as ports:
        # Executors in a process of their own (an execute-only instance, as README's "Running
        # only the execute role"), like the naive executor: neither takes the CPU of the
        # process that receives the fills and sizes them.
        key = generate_key()
        service = Service(DATABASE_URL, REDIS_URL, ROOT / "bench/results/execution.log")
        executor = Service(DATABASE_URL, REDIS_URL, ROOT / "bench/results/execute-role.log")
        for one, roles in ((service, "api,ingest,dispatch"), (executor, "execute")):
            one.env.update(
                COPYTRADE_ROLES=roles,
                COPYTRADE_CREDENTIALS_KEY=key,
                COPYTRADE_RATE_LIMIT_PER_S="100000",
                COPYTRADE_RATE_LIMIT_BURST="100000",
                # One instance holds every account: a lease lost to a slow heartbeat on a
                # loaded machine would stop its executors in the middle of the run.
                COPYTRADE_LEASE_TTL_S="60",
                COPYTRADE_LEASE_HEARTBEAT_S="5",
                # Postgres's connections are shared with whatever else runs on the machine.
                COPYTRADE_DB_POOL_SIZE="4",
            )
        await service.start()
        await executor.start()
        assert service.process is not None
        assert executor.process is not None
        try:
            async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as http:
                seeder = Seeder(http, venue, ports)
                await seeder.call(
                    "PUT", "/v1/instruments/BTCUSDT", json={"qty_step": "0.001", "min_qty": "0.001"}
                )
                # One follower first, alone on the execute instance; then the thousand.
                single = await seeder.leader("one", 1, accounts=True)
                naive_single = await seeder.leader("n-one", 1, accounts=False)
                await seeder.until_ready(single.followers)
                await wait_until_idle(executor.process.pid, busy_share=0.25, limit_s=60)
                results = await _single(
                    service, venue, redis, ports[0], single, naive_single, fills_n
                )
                fan = await seeder.leader("fan", accounts, accounts=True)
                naive_fan = await seeder.leader("n-fan", accounts, accounts=False)
                await seeder.until_ready(fan.followers)
            await wait_until_idle(executor.process.pid, busy_share=0.25, limit_s=60)
            results.append(
                await _fanout(
                    service, executor.process.pid, venue, ports[0], fan, naive_fan, fan_fills
                )
            )
        finally:
            await executor.stop()
            await service.stop()
            await redis.aclose()
    for m in results:
        ratio = m.ratios().get("p50")
        tail = f", {ratio:.1f}x naive" if ratio else ""
        print(f"{m.name}: p50 {m.ours['p50']:.2f} ms, p99 {m.ours['p99']:.2f} ms{tail}", flush=True)
    return results


async def _single(
    service: Service,
    venue: TimedVenue,
    redis: Redis,
    port: int,
    single: Leader,
    naive: Leader,
    fills_n: int,
) -> list[Measurement]:
    with Stamps(redis, single.followers[0]) as stamps:
        async with naive_executor(venue, port, naive.followers):
            (ours, sent), (base, _) = await fills(
                service.ws_url, [single, naive], venue, fills_n, warm=20
            )
    split = [
        (stamps.at[cid] - started, venue.arrived[cid] - stamps.at[cid])
        for started, cid in sent
        if cid in stamps.at
    ]
    return [
        Measurement(
            "execution, 1 follower",
            "ms",
            latency_summary(ours),
            latency_summary(base),
            "push frame sent -> order received by a loopback venue, a fill every 20 ms, ours"
            " and the naive one's in turn; ours over the order socket, naive: a new connection"
            " and a signed REST request per order",
        ),
        Measurement(
            "  of which frame -> stream",
            "ms",
            latency_summary([a for a, _ in split]),
            notes="frame sent -> the order in the follower's stream",
        ),
        Measurement(
            "  of which stream -> venue",
            "ms",
            latency_summary([b for _, b in split]),
            notes="the order in the stream -> received by the venue (the executor)",
        ),
    ]


async def _fanout(
    service: Service,
    executor_pid: int,
    venue: TimedVenue,
    port: int,
    fan: Leader,
    naive: Leader,
    fan_fills: int,
) -> Measurement:
    # Each fill after the previous one's aftermath (reports, account reads) is done.
    # The executors' stream reads are one blocking read per account today; a shared read
    # per instance (one consumer-group core) is measured here the same way once it exists.
    [(ours, _)] = await fills(
        service.ws_url, [fan], venue, fan_fills, warm=1, settle_pid=executor_pid
    )
    async with naive_executor(venue, port, naive.followers):
        [(base, _)] = await fills(service.ws_url, [naive], venue, 1, warm=0)
    n = len(fan.followers)
    return Measurement(
        f"execution, 1 fill -> {n:,} accounts",
        "ms",
        latency_summary(ours),
        latency_summary(base),
        f"frame sent -> the last of {n:,} orders received, {n:,} accounts on one venue"
        f" ({VENUE_PORTS} ports); {fan_fills} fill(s), naive 1",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--fan-fills", type=int, default=3)
    args = parser.parse_args()
    prepare()
    from bench.stats import render

    print(render(asyncio.run(run(args.fills, args.accounts, args.fan_fills))))


if __name__ == "__main__":
    main()
