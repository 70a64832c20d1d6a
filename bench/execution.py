"""Follower execution, measured: the real service (every role) places orders on a loopback
Binance USD-M venue (the demo's, in this process, stamping when each order arrives).

    python -m bench.execution [--fills 200] [--accounts 1000] [--read-shard 1 --read-shard 1000]

- latency, 1 follower on a venue: push frame sent -> the order received by the venue;
- fan-out to N accounts: one fill -> the last of its N orders received by the venue, once per
  ``--read-shard`` (COPYTRADE_EXEC_READ_SHARD: accounts per shared blocking read of their order
  streams; 1 is one read per account).

Uses the bench's database (copytrade_bench) and Redis db (12).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiohttp import web
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.demo.venue import DemoVenue, serve
from app.security.crypto import generate_key
from bench.service import ROOT, Service
from bench.stats import latency_summary

DATABASE_URL = os.environ.get(
    "COPYTRADE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_bench"
)
REDIS_URL = os.environ.get("COPYTRADE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ADMIN = {"Authorization": "Bearer bench-admin-token-0123456789"}


class TimedVenue(DemoVenue):
    """The demo venue, noting when each client order id first arrives."""

    def __init__(self) -> None:
        super().__init__({"BTCUSDT": Decimal("50000")}, Decimal("1000000"))
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def _order(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            self.arrived.setdefault(request.query.get("newClientOrderId", ""), time.perf_counter())
            self.changed.set()
        return await super()._order(request)

    async def until(self, count: int) -> float:
        while len(self.arrived) < count:
            self.changed.clear()
            await self.changed.wait()
        return max(self.arrived.values())


async def seed(http: httpx.AsyncClient, venue: TimedVenue, port: int, accounts: int) -> Any:
    async def call(method: str, path: str, **kw: Any) -> Any:
        response = await http.request(method, path, headers=ADMIN, **kw)
        assert response.status_code in (200, 201), response.text
        return response.json()

    await call("PUT", "/v1/instruments/BTCUSDT", json={"qty_step": "0.001", "min_qty": "0.001"})
    leader = await call("POST", "/v1/leaders", json={"name": "exec", "feed": {"kind": "push"}})
    await call("POST", f"/v1/leaders/{leader['id']}/equity", json={"equity": "10000000"})
    body = {
        "kind": "binance-usdm",
        "api_key": venue.api_key,
        "api_secret": venue.api_secret,
        "rest_url": f"http://127.0.0.1:{port}",
        "ws_url": f"ws://127.0.0.1:{port}",
    }
    followers = []
    for n in range(accounts):
        follower = await call("POST", "/v1/followers", json={"name": f"exec-{n}"})
        await call(
            "POST",
            f"/v1/followers/{follower['id']}/subscriptions",
            json={"leader_id": leader["id"], "multiplier": "1"},
        )
        await call("PUT", f"/v1/followers/{follower['id']}/account", json=body)
        followers.append(follower["id"])
    for follower_id in followers:  # every account read from the venue
        await _until_ready(call, follower_id)
    return leader


async def _until_ready(call: Any, follower_id: str) -> None:
    for _ in range(1200):
        if (await call("GET", f"/v1/followers/{follower_id}/account"))["status"] == "ready":
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"account of {follower_id} never ready")


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
        " leader_fill, subscription_position, leader_position, service_instance CASCADE"
    )
    await conn.close()


async def run(fills: int, accounts: int, read_shards: list[int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    cases = [("1 follower", 1, fills, read_shards[-1])] + [
        (f"{accounts} accounts, read shard {shard}", accounts, 3, shard) for shard in read_shards
    ]
    for label, count, n_fills, shard in cases:
        await reset()
        venue = TimedVenue()
        async with serve(venue) as port:
            service = Service(DATABASE_URL, REDIS_URL, ROOT / "bench/results/execution.log")
            service.env.update(
                COPYTRADE_CREDENTIALS_KEY=generate_key(),
                COPYTRADE_RATE_LIMIT_PER_S="100000",
                COPYTRADE_RATE_LIMIT_BURST="100000",
                COPYTRADE_EXEC_READ_SHARD=str(shard),
            )
            await service.start()
            try:
                async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
                    leader = await seed(http, venue, port, count)
                samples = await _fills(service.ws_url, leader, venue, count, n_fills)
            finally:
                await service.stop()
        results[label] = latency_summary(samples)
        print(label, json.dumps({k: round(v, 2) for k, v in results[label].items()}), flush=True)
    return results


async def _fills(
    ws_url: str, leader: dict[str, Any], venue: TimedVenue, per_fill: int, fills: int
) -> list[float]:
    samples = []
    url = f"{ws_url}/v1/leaders/{leader['id']}/fills/ws"
    headers = {"Authorization": f"Bearer {leader['push_token']}"}
    async with connect(url, additional_headers=headers) as ws:
        warm = 20 if per_fill == 1 else 1
        for n in range(warm + fills):
            side = "buy" if n % 2 == 0 else "sell"
            frame = {"type": "fill", "fill_id": f"x-{n}", "symbol": "BTCUSDT", "side": side,
                     "qty": "1", "price": "50000"}  # fmt: skip
            expected = len(venue.arrived) + per_fill
            started = time.perf_counter()
            await ws.send(json.dumps(frame))
            last = await asyncio.wait_for(venue.until(expected), 60)
            await ws.recv()
            if n >= warm:
                samples.append(last - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fills", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--read-shard", type=int, action="append", dest="read_shards")
    args = parser.parse_args()
    prepare()
    asyncio.run(run(args.fills, args.accounts, args.read_shards or [1000]))


if __name__ == "__main__":
    main()
